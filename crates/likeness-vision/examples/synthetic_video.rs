//! A synthetic 640x480, 30 fps Y4M video (4:2:0, `C420jpeg`, what Chromium's fake camera
//! reads, and what ffmpeg reads from a pipe) built from the faces/ photos, for the browser's
//! video tests and benchmarks. Scenes:
//! - `camera` (default, 4 s): 0-1.5 s obama (obama2.jpg) moving right; 1.5-2 s nobody;
//!   2-3.5 s penny (penny2.png) and raj (raj1.png) side by side, drifting; 3.5-4 s nobody.
//! - `one` (4 s): obama always in view, moving slowly right then back (one known face).
//! - `three` (60 s): obama, penny and howard (howard2.png) come and go, alone and in pairs,
//!   with raj (a stranger) for a while; every 20 s the same pattern at other positions.
//!
//! `cargo run --release -p likeness-vision --example synthetic_video -- OUT.y4m|- IDENTITIES_DIR [SCENE]`

use likeness_vision::{decode, ImageInput, RgbImage};
use std::io::Write;
use std::path::Path;

const W: u32 = 640;
const H: u32 = 480;

fn load(root: &Path, person: &str, file: &str) -> RgbImage {
    let bytes = std::fs::read(root.join(person).join(file)).expect("photo");
    decode(ImageInput::Encoded(&bytes)).expect("decodes").image
}

/// Full-range BT.601 (JPEG) 4:2:0 planes of an RGB frame.
fn i420(frame: &RgbImage) -> Vec<u8> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let px = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        (frame.pixels[i] as f32, frame.pixels[i + 1] as f32, frame.pixels[i + 2] as f32)
    };
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let mut out = Vec::with_capacity(w * h * 3 / 2);
    for y in 0..h {
        for x in 0..w {
            let (r, g, b) = px(x, y);
            out.push(clamp(0.299 * r + 0.587 * g + 0.114 * b));
        }
    }
    let (mut u, mut v) = (Vec::with_capacity(w * h / 4), Vec::with_capacity(w * h / 4));
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            let (mut r, mut g, mut b) = (0.0, 0.0, 0.0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = px(x + dx, y + dy);
                (r, g, b) = (r + p.0 / 4.0, g + p.1 / 4.0, b + p.2 / 4.0);
            }
            u.push(clamp(-0.168_736 * r - 0.331_264 * g + 0.5 * b + 128.0));
            v.push(clamp(0.5 * r - 0.418_688 * g - 0.081_312 * b + 128.0));
        }
    }
    out.extend(u);
    out.extend(v);
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (out, root, scene) = match &args[..] {
        [_, out, root] => (out, root, "camera"),
        [_, out, root, scene] => (out, root, scene.as_str()),
        _ => {
            eprintln!("usage: synthetic_video OUT.y4m|- IDENTITIES_DIR [camera|one|three]");
            std::process::exit(2);
        }
    };
    let root = Path::new(root);
    let obama = load(root, "obama", "obama2.jpg");
    let penny = load(root, "penny", "penny2.png");
    let raj = load(root, "raj", "raj1.png");
    let howard = load(root, "howard", "howard2.png");
    let sink: Box<dyn Write> = if out == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(std::fs::File::create(out).expect("output file"))
    };
    let mut file = std::io::BufWriter::new(sink);
    file.write_all(format!("YUV4MPEG2 W{W} H{H} F30:1 Ip A1:1 C420jpeg\n").as_bytes()).unwrap();
    let frames = match scene {
        "camera" | "one" => 120,
        "three" => 1800,
        other => {
            eprintln!("unknown scene {other}: camera, one or three");
            std::process::exit(2);
        }
    };
    for i in 0..frames {
        let mut frame = RgbImage::filled(W, H, 96);
        match scene {
            "camera" => match i {
                0..45 => frame.draw_scaled(&obama, 40 + 4 * i, 40, 400),
                60..105 => {
                    let t = i - 60;
                    frame.draw_scaled(&penny, 10 + t, 60, 300);
                    frame.draw_scaled(&raj, 330 - t, 70, 300);
                }
                _ => {}
            },
            "one" => frame.draw_scaled(&obama, 80 + 2 * (60 - (i - 60).abs()), 40, 400),
            _ => {
                // 20 s cycles: obama alone, obama + penny, penny + raj, howard alone, nobody.
                let (cycle, t) = (i / 600, i % 600);
                let dx = 20 * cycle;
                match t {
                    0..150 => frame.draw_scaled(&obama, 60 + dx + t, 40, 380),
                    150..270 => {
                        frame.draw_scaled(&obama, 20 + dx, 60, 290);
                        frame.draw_scaled(&penny, 330 - dx, 70, 290);
                    }
                    270..390 => {
                        frame.draw_scaled(&penny, 10 + dx, 60, 300);
                        frame.draw_scaled(&raj, 330 - dx, 70, 300);
                    }
                    390..540 => frame.draw_scaled(&howard, 200 - dx, 40 + (t - 390) / 5, 360),
                    _ => {}
                }
            }
        }
        file.write_all(b"FRAME\n").unwrap();
        file.write_all(&i420(&frame)).unwrap();
    }
    file.flush().unwrap();
}
