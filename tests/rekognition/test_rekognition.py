"""Rekognition's own API on likeness-server, driven by clients nobody here wrote: boto3, the
AWS CLI and the AWS SDK for Rust (rust-sdk/), pointed at a real server process (real models, real photos). Every raw response
body is checked against the service model botocore ships (member names, JSON types, enum
values), and results through the API equal the `likeness` CLI's on the same images.

Run: python -m unittest discover -s tests/rekognition (after cargo build --release), with
boto3 and awscli installed (tests/run-all.sh makes a venv for them).
"""

import base64
import concurrent.futures
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import boto3
import botocore.config
import botocore.exceptions

REPO = pathlib.Path(__file__).resolve().parents[2]
FACES = REPO.parent / "shared" / "data" / "faces" / "identities"
SERVER = REPO / "target" / "release" / "likeness-server"
CLI = REPO / "target" / "release" / "likeness"
KEYS = {"AKIDTENANTONE": "secret-one/with+chars", "AKIDTENANTTWO": "secret-two"}
# Errors any operation may answer with that the model lists per operation or service-wide.
COMMON_ERRORS = {
    "UnknownOperationException", "SerializationException", "MissingAuthenticationTokenException",
    "InvalidSignatureException", "IncompleteSignatureException", "UnrecognizedClientException",
    "RequestEntityTooLargeException",
}

HAVE_DATA = FACES.is_dir()


def photo(person, name=None):
    folder = FACES / person
    return folder / (name or sorted(os.listdir(folder))[0])


def check_shape(shape, value, path):
    """`value` (raw JSON) fits botocore's `shape`: known members only, right JSON types, enums."""
    t = shape.type_name
    if t == "structure":
        assert isinstance(value, dict), f"{path}: expected an object, got {value!r}"
        for k, v in value.items():
            assert k in shape.members, f"{path}.{k} is not a member of {shape.name} ({sorted(shape.members)})"
            check_shape(shape.members[k], v, f"{path}.{k}")
        for k in shape.required_members:
            assert k in value, f"{path}.{k} is required by {shape.name}"
    elif t == "list":
        assert isinstance(value, list), f"{path}: expected a list"
        for i, v in enumerate(value):
            check_shape(shape.member, v, f"{path}[{i}]")
    elif t == "map":
        assert isinstance(value, dict), f"{path}: expected a map"
        for k, v in value.items():
            check_shape(shape.value, v, f"{path}[{k}]")
    elif t == "string":
        assert isinstance(value, str), f"{path}: expected a string, got {value!r}"
        if shape.enum:
            assert value in shape.enum, f"{path} = {value!r} is not one of {shape.name}'s {shape.enum}"
    elif t in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: expected an integer, got {value!r}"
    elif t in ("float", "double", "timestamp"):
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: expected a number"
    elif t == "boolean":
        assert isinstance(value, bool), f"{path}: expected a boolean"
    elif t == "blob":
        assert isinstance(value, str), f"{path}: expected base64"
    else:
        raise AssertionError(f"{path}: unhandled shape type {t}")


class Server:
    """A likeness-server process with the Rekognition mode on, in a temp dir."""

    def __init__(self, tmp, *extra):
        keys = pathlib.Path(tmp) / "keys"
        keys.write_text("".join(f"{k} {v}\n" for k, v in KEYS.items()))
        self.proc = subprocess.Popen(
            [str(SERVER), "--listen", "127.0.0.1:0", "--database", f"sqlite://{tmp}/sync.db",
             "--rekognition-keys", str(keys), "--rekognition-data", f"{tmp}/rekognition",
             "--s3-bucket", f"photos={FACES}", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "RUST_LOG": "warn"},
        )
        self.url = self.proc.stdout.readline().strip().split(" ")[-1]
        assert self.url.startswith("http://127.0.0.1:"), self.url

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()


def client(url, key="AKIDTENANTONE", secret=None, checked=None):
    c = boto3.client(
        "rekognition", endpoint_url=url, region_name="eu-west-1",
        aws_access_key_id=key, aws_secret_access_key=secret if secret is not None else KEYS.get(key, "x"),
        config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    if checked is not None:
        def after_call(http_response, parsed, model, **_):
            raw = json.loads(http_response.content or b"{}")
            if http_response.status_code == 200:
                check_shape(model.output_shape, raw, model.name)
            else:
                code = raw.get("__type", "")
                known = {s.name for s in model.error_shapes} | COMMON_ERRORS | {"ThrottlingException"}
                assert code in known, f"{model.name} answered {code}, which its model does not list"
                assert isinstance(raw.get("Message"), str)
            checked.add(model.name)
        c.meta.events.register("after-call.rekognition", after_call)
    return c


def error_code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("expected an error")


@unittest.skipUnless(HAVE_DATA, f"SKIP: {FACES} is absent; the Rekognition API tests need ../shared/data")
class RekognitionApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert SERVER.exists() and CLI.exists(), "cargo build --release first"
        cls.tmp = tempfile.mkdtemp(prefix="likeness-rekognition-")
        cls.server = Server(cls.tmp)
        cls.checked = set()
        cls.rk = client(cls.server.url, checked=cls.checked)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def image(self, person, name=None):
        return {"Bytes": photo(person, name).read_bytes()}

    def test_1_the_whole_collection_flow(self):
        rk = self.rk
        created = rk.create_collection(CollectionId="staff")
        self.assertEqual(created["StatusCode"], 200)
        people = ["obama", "amy", "penny", "sheldon", "leonard"]
        indexed = {}
        for person in people:
            files = sorted(os.listdir(FACES / person))
            # The first photo as bytes, the second through the mapped S3 bucket.
            r = rk.index_faces(CollectionId="staff", Image=self.image(person, files[0]), ExternalImageId=person,
                               MaxFaces=1, QualityFilter="AUTO", DetectionAttributes=["DEFAULT"])
            self.assertEqual(len(r["FaceRecords"]), 1, r.get("UnindexedFaces"))
            self.assertIn(r["OrientationCorrection"], ["ROTATE_0", "ROTATE_90", "ROTATE_180", "ROTATE_270"])
            s3 = rk.index_faces(CollectionId="staff", Image={"S3Object": {"Bucket": "photos", "Name": f"{person}/{files[1]}"}},
                                ExternalImageId=person, MaxFaces=1)
            indexed[person] = [r["FaceRecords"][0]["Face"]["FaceId"], s3["FaceRecords"][0]["Face"]["FaceId"]]
        described = rk.describe_collection(CollectionId="staff")
        self.assertEqual(described["FaceCount"], 10)
        self.assertTrue(described["CollectionARN"])

        # Paging through ListFaces two at a time sees every face once.
        seen, token = [], None
        while True:
            page = rk.list_faces(CollectionId="staff", MaxResults=2, **({"NextToken": token} if token else {}))
            seen += [f["FaceId"] for f in page["Faces"]]
            token = page.get("NextToken")
            if not token:
                break
        self.assertEqual(sorted(seen), sorted(sum(indexed.values(), [])))

        # Each person's third photo finds that person first.
        for person in people:
            third = sorted(os.listdir(FACES / person))[2]
            found = rk.search_faces_by_image(CollectionId="staff", Image=self.image(person, third), MaxFaces=3,
                                             FaceMatchThreshold=50)
            self.assertEqual(found["FaceMatches"][0]["Face"]["ExternalImageId"], person, found["FaceMatches"])
        by_id = rk.search_faces(CollectionId="staff", FaceId=indexed["obama"][0], MaxFaces=5)
        self.assertEqual(by_id["FaceMatches"][0]["Face"]["FaceId"], indexed["obama"][1])

        # Users: associate, search by image, disassociate, delete.
        rk.create_user(CollectionId="staff", UserId="barack", ClientRequestToken="t1")
        assoc = rk.associate_faces(CollectionId="staff", UserId="barack", FaceIds=indexed["obama"])
        self.assertEqual(len(assoc["AssociatedFaces"]), 2)
        users = rk.search_users_by_image(CollectionId="staff", Image=self.image("obama", "obama3.jpg"), MaxUsers=1)
        self.assertEqual(users["UserMatches"][0]["User"]["UserId"], "barack")
        self.assertEqual(rk.search_users(CollectionId="staff", FaceId=indexed["obama"][0])["UserMatches"][0]["User"]["UserId"], "barack")
        self.assertEqual([u["UserId"] for u in rk.list_users(CollectionId="staff")["Users"]], ["barack"])
        dis = rk.disassociate_faces(CollectionId="staff", UserId="barack", FaceIds=[indexed["obama"][1]])
        self.assertEqual(len(dis["DisassociatedFaces"]), 1)
        rk.delete_user(CollectionId="staff", UserId="barack")
        deleted = rk.delete_faces(CollectionId="staff", FaceIds=indexed["leonard"])
        self.assertEqual(sorted(deleted["DeletedFaces"]), sorted(indexed["leonard"]))
        self.assertEqual(rk.describe_collection(CollectionId="staff")["FaceCount"], 8)

        compared = rk.compare_faces(SourceImage=self.image("obama"), TargetImage=self.image("obama", "obama2.jpg"))
        self.assertGreater(compared["FaceMatches"][0]["Similarity"], 90)
        detected = rk.detect_faces(Image=self.image("penny"))
        self.assertEqual(len(detected["FaceDetails"]), 1)

        # The other tenant sees none of it.
        other = client(self.server.url, key="AKIDTENANTTWO", checked=self.checked)
        self.assertEqual(other.list_collections()["CollectionIds"], [])
        self.assertEqual(error_code(lambda: other.describe_collection(CollectionId="staff")), "ResourceNotFoundException")

    def test_2_errors_are_the_services(self):
        rk = self.rk
        rk.create_collection(CollectionId="errors")
        cases = {
            "ResourceNotFoundException": lambda: rk.search_faces_by_image(CollectionId="missing", Image=self.image("obama")),
            "ResourceAlreadyExistsException": lambda: rk.create_collection(CollectionId="errors"),
            "InvalidImageFormatException": lambda: rk.index_faces(CollectionId="errors", Image={"Bytes": b"not an image"}),
            "ImageTooLargeException": lambda: rk.detect_faces(Image={"Bytes": b"\xff" * (5 * 1024 * 1024 + 1)}),
            "InvalidPaginationTokenException": lambda: rk.list_faces(CollectionId="errors", NextToken="bogus-token"),
            "InvalidS3ObjectException": lambda: rk.detect_faces(Image={"S3Object": {"Bucket": "nobody", "Name": "x.jpg"}}),
            "InvalidParameterException": lambda: rk.search_faces(CollectionId="errors", FaceId="00000000-0000-0000-0000-00000000000g"),
        }
        for expected, call in cases.items():
            with self.subTest(expected):
                self.assertEqual(error_code(call), expected)
        # Past the request size limit: the service's JSON shape, not a bare 413 page.
        huge = lambda: rk.compare_faces(SourceImage={"Bytes": b"\xff" * (8 << 20)}, TargetImage={"Bytes": b"\xff" * (8 << 20)})
        self.assertEqual(error_code(huge), "RequestEntityTooLargeException")
        climbing = lambda: rk.detect_faces(Image={"S3Object": {"Bucket": "photos", "Name": "../../etc/passwd"}})
        self.assertEqual(error_code(climbing), "InvalidS3ObjectException")
        self.assertEqual(error_code(lambda: client(self.server.url, secret="wrong").list_collections()), "InvalidSignatureException")
        self.assertEqual(error_code(lambda: client(self.server.url, key="AKIDNOBODY").list_collections()), "UnrecognizedClientException")
        self.assertEqual(error_code(lambda: rk.detect_labels(Image=self.image("obama"))), "UnknownOperationException")
        # Nothing stored was lost to any of it.
        self.assertIn("staff", rk.list_collections()["CollectionIds"])

    def test_3_results_equal_the_cli(self):
        store = pathlib.Path(self.tmp) / "cli-store"
        cli = lambda *a: json.loads(subprocess.run([str(CLI), "--store", str(store), *a], check=True, capture_output=True, text=True).stdout)
        cli("create-collection", "--collection-id", "same")
        self.rk.create_collection(CollectionId="same")
        for person in ["obama", "biden", "howard"]:
            p = photo(person)
            cli("index-faces", "--collection-id", "same", "--external-image-id", person, "--max-faces", "1", "--image", str(p))
            self.rk.index_faces(CollectionId="same", Image={"Bytes": p.read_bytes()}, ExternalImageId=person, MaxFaces=1)
        probe = photo("obama", "obama2.jpg")
        a = cli("search-faces-by-image", "--collection-id", "same", "--face-match-threshold", "0", "--image", str(probe))
        b = self.rk.search_faces_by_image(CollectionId="same", Image={"Bytes": probe.read_bytes()}, FaceMatchThreshold=0)
        self.assertEqual([m["Face"]["ExternalImageId"] for m in a["FaceMatches"]], [m["Face"]["ExternalImageId"] for m in b["FaceMatches"]])
        for x, y in zip(a["FaceMatches"], b["FaceMatches"]):
            self.assertAlmostEqual(x["Similarity"], y["Similarity"], places=3)
        d_cli = json.loads(subprocess.run([str(CLI), "detect-faces", "--image", str(probe)], check=True, capture_output=True, text=True).stdout)
        d_api = self.rk.detect_faces(Image={"Bytes": probe.read_bytes()})
        self.assertEqual(len(d_cli["FaceDetails"]), len(d_api["FaceDetails"]))
        self.assertAlmostEqual(d_cli["FaceDetails"][0]["BoundingBox"]["Left"], d_api["FaceDetails"][0]["BoundingBox"]["Left"], places=5)

    def test_4_the_aws_cli(self):
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIDTENANTONE", "AWS_SECRET_ACCESS_KEY": KEYS["AKIDTENANTONE"],
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
        aws = lambda *a: subprocess.run(["aws", "rekognition", *a, "--endpoint-url", self.server.url, "--output", "json"],
                                        capture_output=True, text=True, env=env)
        made = aws("create-collection", "--collection-id", "from-aws-cli")
        self.assertEqual(made.returncode, 0, made.stderr)
        indexed = aws("index-faces", "--collection-id", "from-aws-cli", "--image-bytes", f"fileb://{photo('sheldon')}",
                      "--external-image-id", "sheldon")
        self.assertEqual(indexed.returncode, 0, indexed.stderr)
        found = aws("search-faces-by-image", "--collection-id", "from-aws-cli",
                    "--image", '{"S3Object":{"Bucket":"photos","Name":"sheldon/' + sorted(os.listdir(FACES / "sheldon"))[1] + '"}}')
        self.assertEqual(found.returncode, 0, found.stderr)
        self.assertEqual(json.loads(found.stdout)["FaceMatches"][0]["Face"]["ExternalImageId"], "sheldon")
        missing = aws("describe-collection", "--collection-id", "nope")
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("ResourceNotFoundException", missing.stderr)

    def test_4b_the_aws_sdk_for_rust(self):
        # Built by tests/run-all.sh (tests/rekognition/rust-sdk, its own workspace), which
        # names the binary here; run alone, this test says it was not given one.
        binary = os.environ.get("LIKENESS_RUST_SDK_CHECK")
        if not binary:
            self.skipTest("SKIP: LIKENESS_RUST_SDK_CHECK is unset (tests/run-all.sh builds and names it)")
        run = subprocess.run([binary, self.server.url, "AKIDTENANTONE", KEYS["AKIDTENANTONE"], str(FACES)],
                             capture_output=True, text=True, timeout=300)
        self.assertEqual(run.returncode, 0, run.stderr)

    def test_5_every_operation_was_checked_against_the_model(self):
        served = {"CreateCollection", "DeleteCollection", "DescribeCollection", "ListCollections", "IndexFaces",
                  "ListFaces", "DeleteFaces", "SearchFaces", "SearchFacesByImage", "CreateUser", "DeleteUser",
                  "ListUsers", "AssociateFaces", "DisassociateFaces", "SearchUsers", "SearchUsersByImage",
                  "CompareFaces", "DetectFaces"}
        self.rk.delete_collection(CollectionId="errors")
        self.assertEqual(served - self.checked, set())


@unittest.skipUnless(HAVE_DATA, f"SKIP: {FACES} is absent")
class Throttling(unittest.TestCase):
    def test_past_the_queue_requests_are_throttled_not_queued(self):
        tmp = tempfile.mkdtemp(prefix="likeness-rekognition-")
        server = Server(tmp, "--rekognition-workers", "1", "--rekognition-queue", "1")
        try:
            rk = client(server.url)
            image = {"Bytes": photo("obama").read_bytes()}

            def one(_):
                try:
                    rk.detect_faces(Image=image)
                    return "ok"
                except botocore.exceptions.ClientError as e:
                    return e.response["Error"]["Code"]

            with concurrent.futures.ThreadPoolExecutor(12) as pool:
                outcomes = list(pool.map(one, range(12)))
            self.assertIn("ok", outcomes)
            self.assertIn("ThrottlingException", outcomes)
            self.assertEqual(set(outcomes), {"ok", "ThrottlingException"})
            # Once the burst is over, the server answers again.
            self.assertEqual(one(0), "ok")
        finally:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
