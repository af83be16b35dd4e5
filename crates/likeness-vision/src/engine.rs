//! `FaceEngine`: models loaded once, then DetectFaces, embedding and CompareFaces.

use crate::calibration::Calibration;
use crate::decode::{decode, DecodedImage, ImageInput, RgbImage};
use crate::detector::{Detection, Detector, FrameRange};
use crate::embedder::{cosine, Embedder, FACE_MODEL_VERSION};
use crate::error::VisionError;
use crate::landmarks::{Landmarker, LANDMARKER_ONNX};
use crate::quality::{confidence, image_quality, pose};
use crate::types::*;

/// DetectFaces and CompareFaces report at most this many faces (the largest).
pub const MAX_FACES: usize = 100;

/// ONet's face probability under which a still's detection is dropped. On verify-dev's
/// images, what BlazeFace found and ONet put under it was patterned clothing, hands and
/// blurred background (0.003-0.05); the lowest true face was a face lying on its side at 0.056.
pub const MIN_FACE_PROBABILITY: f32 = 0.02;

/// `Confidence` at and above which a face counts as likely ([`LocatedFace::is_likely_face`]).
pub const LIKELY_FACE_CONFIDENCE: f32 = 50.0;

/// Default CompareFaces SimilarityThreshold.
pub const DEFAULT_SIMILARITY_THRESHOLD: f32 = 80.0;

/// ONNX bytes of the three models. In the browser these arrive from `fetch`.
#[derive(Debug, Clone, Copy)]
pub struct ModelBytes<'a> {
    pub detector_short: &'a [u8],
    pub detector_full: &'a [u8],
    pub embedder: &'a [u8],
}

#[cfg(feature = "embedded-models")]
impl ModelBytes<'static> {
    /// The models committed under `models/`, compiled into the binary.
    pub fn embedded() -> Self {
        ModelBytes {
            detector_short: include_bytes!("../../../models/blazeface-short.onnx"),
            detector_full: include_bytes!("../../../models/blazeface-full.onnx"),
            embedder: include_bytes!("../../../models/faceapi-resnet.onnx"),
        }
    }
}

/// The vision engine. Build once (model optimisation takes a moment) and reuse.
pub struct FaceEngine {
    detector: Detector,
    landmarker: Landmarker,
    embedder: Embedder,
    calibration: Calibration,
}

/// A face found in an image, before it is embedded.
#[derive(Debug, Clone)]
pub struct LocatedFace {
    pub detection: Detection,
    pub detail: FaceDetail,
}

impl LocatedFace {
    /// Shorter side of the face box in pixels (the SMALL_BOUNDING_BOX quality measure).
    pub fn size_pixels(&self) -> f32 {
        self.detection.width().min(self.detection.height())
    }

    /// Whether the face's `Confidence` is at least [`LIKELY_FACE_CONFIDENCE`]: more likely a
    /// face than not. Operations that search "the largest face" take it among these first.
    pub fn is_likely_face(&self) -> bool {
        self.detail.confidence >= LIKELY_FACE_CONFIDENCE
    }
}

/// LFW's convention for which face of a photo is its subject: among the likely faces first
/// (as in [`FaceEngine::locate`]'s order), the one of largest visible area weighted by
/// closeness to the image centre (1 at the centre, 0 at a corner). `likeness eval` and the
/// development tools pick faces this way; the operations take `locate`'s first face.
pub fn centred_face(faces: &[LocatedFace], width: u32, height: u32) -> Option<&LocatedFace> {
    let (w, h) = (width as f32, height as f32);
    let weight = |f: &LocatedFace| {
        let d = &f.detection;
        let (cx, cy) = ((d.x0 + d.x1) / 2.0 - w / 2.0, (d.y0 + d.y1) / 2.0 - h / 2.0);
        d.visible_area(w, h) * (1.0 - (cx.hypot(cy) / (w / 2.0).hypot(h / 2.0)).min(1.0))
    };
    faces.iter().max_by(|a, b| a.is_likely_face().cmp(&b.is_likely_face()).then(weight(a).total_cmp(&weight(b))))
}

impl FaceEngine {
    pub fn load(models: ModelBytes<'_>) -> Result<Self, VisionError> {
        Ok(FaceEngine {
            detector: Detector::load(models.detector_short, models.detector_full)?,
            landmarker: Landmarker::load(LANDMARKER_ONNX)?,
            embedder: Embedder::load(models.embedder)?,
            calibration: Calibration::default(),
        })
    }

    /// Load with the embedder from its prepared form when `prepared` holds one that loads
    /// (see [`Embedder::load_and_prepare`]); otherwise from ONNX, returning the prepared form
    /// to keep for next time. A prepared form that does not load is ignored, not an error.
    pub fn load_with_prepared(
        models: ModelBytes<'_>,
        prepared: Option<&[u8]>,
    ) -> Result<(Self, Option<Vec<u8>>), VisionError> {
        let detector = Detector::load(models.detector_short, models.detector_full)?;
        let (embedder, fresh) = match prepared.map(Embedder::load_prepared) {
            Some(Ok(embedder)) => (embedder, None),
            _ => {
                let (embedder, fresh) = Embedder::load_and_prepare(models.embedder)?;
                (embedder, Some(fresh))
            }
        };
        let landmarker = Landmarker::load(LANDMARKER_ONNX)?;
        Ok((FaceEngine { detector, landmarker, embedder, calibration: Calibration::default() }, fresh))
    }

    /// Load the models compiled into the binary (feature `embedded-models`).
    #[cfg(feature = "embedded-models")]
    pub fn embedded() -> Result<Self, VisionError> {
        Self::load(ModelBytes::embedded())
    }

    pub fn face_model_version(&self) -> &'static str {
        FACE_MODEL_VERSION
    }

    pub fn dimension(&self) -> usize {
        self.embedder.dimension()
    }

    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    pub fn set_calibration(&mut self, calibration: Calibration) {
        self.calibration = calibration;
    }

    pub fn detector_mut(&mut self) -> &mut Detector {
        &mut self.detector
    }

    pub fn embedder_mut(&mut self) -> &mut Embedder {
        &mut self.embedder
    }

    /// Calibrated similarity 0-100 of two face vectors.
    pub fn similarity(&self, a: &[f32], b: &[f32]) -> f32 {
        self.calibration.similarity(cosine(a, b))
    }

    /// The largest `MAX_FACES` faces of a decoded image, each with its precise landmarks:
    /// likely faces ([`LocatedFace::is_likely_face`]) first, largest visible area first
    /// within each group, so that "the largest face" every operation searches is a face
    /// whenever the image has one. Detections ONet all but rules out
    /// ([`MIN_FACE_PROBABILITY`]) are not reported.
    pub fn locate(&self, img: &RgbImage) -> Result<Vec<LocatedFace>, VisionError> {
        let mut dets = self.detector.detect(img)?;
        let (w, h) = (img.width as f32, img.height as f32);
        dets.sort_by(|a, b| b.visible_area(w, h).total_cmp(&a.visible_area(w, h)));
        dets.truncate(MAX_FACES);
        for d in &mut dets {
            d.landmarks = Some(self.landmarker.locate(img, d)?);
        }
        dets.retain(|d| d.landmarks.is_some_and(|l| l.face_probability >= MIN_FACE_PROBABILITY));
        let mut faces: Vec<LocatedFace> =
            dets.into_iter().map(|d| LocatedFace { detail: self.describe(img, &d), detection: d }).collect();
        // Stable: the area order holds within each group.
        faces.sort_by_key(|f| !f.is_likely_face());
        Ok(faces)
    }

    /// The detection with its precise landmarks: as given when they were located already
    /// (stills), else located now (video frames, which locate them only for faces they embed).
    fn with_landmarks(&self, img: &RgbImage, d: &Detection) -> Result<Detection, VisionError> {
        let mut d = d.clone();
        if d.landmarks.is_none() {
            d.landmarks = Some(self.landmarker.locate(img, &d)?);
        }
        Ok(d)
    }

    fn describe(&self, img: &RgbImage, d: &Detection) -> FaceDetail {
        let (w, h) = (img.width as f32, img.height as f32);
        let point = |kind, (x, y): (f32, f32)| Landmark { kind, x: x / w, y: y / h };
        // BlazeFace's ear tragions are the upper ends of the jawline. The rest come from the
        // precise landmarks where they were located (a still), else from BlazeFace's eyes and
        // nose tip (a video frame; its mouth centre has no Rekognition name).
        let [el, er, nose, _, ear_l, ear_r] = d.keypoints;
        let mut landmarks = match &d.landmarks {
            Some(l) => {
                let [el, er, nose, ml, mr] = l.points;
                vec![
                    point(LandmarkType::EyeLeft, el),
                    point(LandmarkType::EyeRight, er),
                    point(LandmarkType::Nose, nose),
                    point(LandmarkType::MouthLeft, ml),
                    point(LandmarkType::MouthRight, mr),
                ]
            }
            None => vec![
                point(LandmarkType::EyeLeft, el),
                point(LandmarkType::EyeRight, er),
                point(LandmarkType::Nose, nose),
            ],
        };
        landmarks.push(point(LandmarkType::UpperJawlineLeft, ear_l));
        landmarks.push(point(LandmarkType::UpperJawlineRight, ear_r));
        FaceDetail {
            bounding_box: BoundingBox { width: d.width() / w, height: d.height() / h, left: d.x0 / w, top: d.y0 / h },
            landmarks,
            pose: pose(d),
            quality: image_quality(img, d),
            confidence: confidence(d),
        }
    }

    /// The faces of one video frame ([`Detector::detect_frame`]'s single view), largest
    /// visible area first.
    pub fn locate_frame(&self, img: &RgbImage, range: FrameRange) -> Result<Vec<LocatedFace>, VisionError> {
        let mut dets = self.detector.detect_frame(img, range)?;
        let (w, h) = (img.width as f32, img.height as f32);
        dets.sort_by(|a, b| b.visible_area(w, h).total_cmp(&a.visible_area(w, h)));
        dets.truncate(MAX_FACES);
        Ok(dets.into_iter().map(|d| LocatedFace { detail: self.describe(img, &d), detection: d }).collect())
    }

    /// Vector of a located face.
    pub fn embed(&self, img: &RgbImage, face: &LocatedFace) -> Result<EmbeddedFace, VisionError> {
        Ok(EmbeddedFace {
            detail: face.detail.clone(),
            embedding: self.embedder.embed(img, &self.with_landmarks(img, &face.detection)?)?,
            size_pixels: face.size_pixels(),
        })
    }

    /// A face's look in 256 numbers: its aligned crop at 16 x 16, grey, mean removed, unit
    /// length. Two views of one face in consecutive frames correlate near 1; a different face
    /// in the same place correlates less, which is how the video path notices a cut without
    /// running the embedder every frame.
    pub fn appearance(&self, img: &RgbImage, face: &LocatedFace) -> Vec<f32> {
        crate::align::appearance(img, &face.detection)
    }

    /// The embedder's aligned crop of a located face, for [`FaceEngine::embed_chip`]
    /// elsewhere (another worker, another thread).
    pub fn chip(&self, img: &RgbImage, face: &LocatedFace) -> Result<Vec<f32>, VisionError> {
        Ok(self.embedder.chip(img, &self.with_landmarks(img, &face.detection)?))
    }

    /// The vector of a crop from [`FaceEngine::chip`]: the same vector [`FaceEngine::embed`]
    /// gives for the face.
    pub fn embed_chip(&self, chip: &[f32]) -> Result<Vec<f32>, VisionError> {
        self.embedder.embed_chip(chip)
    }

    /// One network pass over a crop from [`FaceEngine::chip`] or its mirror image, raw: the
    /// normalised sum of both passes is [`FaceEngine::embed_chip`]'s vector.
    pub fn embed_chip_pass(&self, chip: &[f32], mirrored: bool) -> Result<Vec<f32>, VisionError> {
        self.embedder.pass(chip, mirrored)
    }

    /// DetectFaces.
    pub fn detect_faces(&self, input: ImageInput<'_>) -> Result<DetectFacesOutput, VisionError> {
        let DecodedImage { image, orientation_correction } = decode(input)?;
        let faces = self.locate(&image)?;
        Ok(DetectFacesOutput { face_details: faces.into_iter().map(|f| f.detail).collect(), orientation_correction })
    }

    /// Decode, detect, and embed the `max_faces` largest faces (largest first).
    pub fn analyze(&self, input: ImageInput<'_>, max_faces: usize) -> Result<AnalyzedImage, VisionError> {
        let DecodedImage { image, orientation_correction } = decode(input)?;
        self.analyze_decoded(&image, orientation_correction, max_faces)
    }

    pub fn analyze_decoded(
        &self,
        image: &RgbImage,
        orientation_correction: crate::decode::OrientationCorrection,
        max_faces: usize,
    ) -> Result<AnalyzedImage, VisionError> {
        let located = self.locate(image)?;
        let faces = located.iter().take(max_faces).map(|f| self.embed(image, f)).collect::<Result<Vec<_>, _>>()?;
        Ok(AnalyzedImage {
            width: image.width,
            height: image.height,
            orientation_correction,
            faces,
            face_model_version: FACE_MODEL_VERSION.to_string(),
        })
    }

    /// CompareFaces: the largest face of `source` against up to 100 largest faces of `target`.
    pub fn compare_faces(
        &self,
        source: ImageInput<'_>,
        target: ImageInput<'_>,
        similarity_threshold: f32,
    ) -> Result<CompareFacesOutput, VisionError> {
        if !(0.0..=100.0).contains(&similarity_threshold) {
            return Err(VisionError::InvalidParameter(format!(
                "SimilarityThreshold must be between 0 and 100, got {similarity_threshold}"
            )));
        }
        let src = self.analyze(source, 1)?;
        let Some(probe) = src.faces.first() else {
            return Err(VisionError::InvalidParameter("no face found in the source image".into()));
        };
        let tgt = self.analyze(target, MAX_FACES)?;
        let mut face_matches = Vec::new();
        let mut unmatched_faces = Vec::new();
        for face in tgt.faces {
            let similarity = self.similarity(&probe.embedding, &face.embedding);
            if similarity >= similarity_threshold {
                face_matches.push(CompareFacesMatch { similarity, face: face.detail });
            } else {
                unmatched_faces.push(face.detail);
            }
        }
        face_matches.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        Ok(CompareFacesOutput {
            source_image_face: ComparedSourceImageFace {
                bounding_box: probe.detail.bounding_box,
                confidence: probe.detail.confidence,
            },
            face_matches,
            unmatched_faces,
            source_image_orientation_correction: src.orientation_correction,
            target_image_orientation_correction: tgt.orientation_correction,
        })
    }
}
