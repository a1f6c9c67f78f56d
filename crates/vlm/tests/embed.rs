//! Image embeddings on the tiny fixture model: a near-identical screenshot lands closer than
//! an unrelated one, generation hands over the same vector the vision-only path computes,
//! and every vector names the weights it came from.

use image::{DynamicImage, Rgb, RgbImage};
use opslens_vlm::embed::cosine;

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/test/tiny-qwen3-vl"
);

fn engine() -> opslens_vlm::Engine {
    let opts = opslens_vlm::LoadOptions {
        mode: opslens_vlm::WeightMode::F32,
        ..Default::default()
    };
    opslens_vlm::Engine::load(DIR.as_ref(), &candle_core::Device::Cpu, &opts).unwrap()
}

/// A dashboard-like picture: `bars` vertical bars of heights from `seed` on a dark panel.
fn dashboard(seed: u32, w: u32, h: u32) -> RgbImage {
    let mut img = RgbImage::from_pixel(w, h, Rgb([24, 26, 32]));
    let bars = 12;
    for b in 0..bars {
        let height = (h / 8) + ((seed.wrapping_mul(2654435761).wrapping_add(b * 40503)) % (h / 2));
        let x0 = 8 + b * (w - 16) / bars;
        for x in x0..x0 + (w - 16) / bars - 4 {
            for y in h - 8 - height..h - 8 {
                img.put_pixel(x, y, Rgb([80, 200, 120]));
            }
        }
    }
    img
}

#[test]
fn near_identical_screenshots_embed_closer_than_unrelated_ones() {
    let eng = engine();
    assert!(
        eng.model_id.starts_with("tiny-qwen3-vl@"),
        "{}",
        eng.model_id
    );
    let a = dashboard(1, 256, 192);
    // The same dashboard a moment later: a few pixels of a label changed, slightly brighter.
    let mut a2 = a.clone();
    for x in 20..40 {
        for y in 10..16 {
            a2.put_pixel(x, y, Rgb([230, 230, 230]));
        }
    }
    for p in a2.pixels_mut() {
        p.0 = p.0.map(|c| c.saturating_add(3));
    }
    // Unrelated screens: other bars, an error page (light, text-like stripes), the fixtures.
    let b = dashboard(7, 256, 192);
    let mut page = RgbImage::from_pixel(256, 192, Rgb([250, 250, 250]));
    for y in (30..150).step_by(12) {
        for x in 20..(60 + (y * 7) % 170) {
            page.put_pixel(x, y, Rgb([40, 40, 40]));
            page.put_pixel(x, y + 1, Rgb([40, 40, 40]));
        }
    }
    let embed = |img: &DynamicImage| eng.embed_image(img).unwrap();
    let ea = embed(&DynamicImage::ImageRgb8(a));
    let ea2 = embed(&DynamicImage::ImageRgb8(a2));
    assert_eq!(
        ea.vector.len(),
        eng.model.config().vision_config.out_hidden_size
    );
    assert_eq!(ea.model, eng.model_id);
    let near = cosine(&ea.vector, &ea2.vector).unwrap();
    for (name, other) in [
        ("other dashboard", DynamicImage::ImageRgb8(b)),
        ("error page", DynamicImage::ImageRgb8(page)),
        (
            "panel.png",
            image::open(format!("{DIR}/panel.png")).unwrap(),
        ),
        ("wide.png", image::open(format!("{DIR}/wide.png")).unwrap()),
    ] {
        let far = cosine(&ea.vector, &embed(&other).vector).unwrap();
        assert!(
            near > far,
            "near-identical {near:.4} should beat {name} {far:.4}"
        );
    }
    assert!(near > 0.99, "near-identical only {near:.4}");
    // Deterministic: the same image gives the same vector.
    let again = embed(&DynamicImage::ImageRgb8(dashboard(1, 256, 192)));
    assert_eq!(again.vector, ea.vector);
}

#[test]
fn generation_carries_the_vision_only_embedding() {
    let mut eng = engine();
    let img = image::open(format!("{DIR}/panel.png")).unwrap();
    let alone = eng.embed_image(&img).unwrap();
    let params = opslens_vlm::GenerateParams {
        max_new_tokens: 1,
        ..Default::default()
    };
    let g = eng
        .generate(Some(&img), "what is wrong?", &params, &mut |_, _| {}, None)
        .unwrap();
    assert_eq!(g.image_embeddings.len(), 1);
    let c = cosine(&g.image_embeddings[0], &alone.vector).unwrap();
    assert!(c > 0.999_999, "{c}");
    // Two pictures in one prompt: one vector each, in order.
    let wide = image::open(format!("{DIR}/wide.png")).unwrap();
    let g = eng
        .generate_images(
            &[&img, &wide],
            "what changed?",
            &params,
            &mut |_, _| {},
            None,
        )
        .unwrap();
    assert_eq!(g.image_embeddings.len(), 2);
    let w = eng.embed_image(&wide).unwrap();
    assert!(cosine(&g.image_embeddings[0], &alone.vector).unwrap() > 0.999_999);
    assert!(cosine(&g.image_embeddings[1], &w.vector).unwrap() > 0.999_999);
    // Text only: none.
    let g = eng
        .generate(None, "hello", &params, &mut |_, _| {}, None)
        .unwrap();
    assert!(g.image_embeddings.is_empty());
}

#[test]
fn model_ids_differ_between_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("tiny-qwen3-vl");
    std::fs::create_dir(&copy).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(format!("{DIR}/{f}"), copy.join(f)).unwrap();
    }
    let id = opslens_vlm::embed::model_id(DIR.as_ref());
    // Same files under the same folder name: the same id (a copied model stays comparable).
    assert_eq!(opslens_vlm::embed::model_id(&copy), id);
    // Another configuration: another id.
    let cfg = std::fs::read_to_string(copy.join("config.json")).unwrap();
    std::fs::write(
        copy.join("config.json"),
        cfg.replace("\"depth\": 3", "\"depth\": 2"),
    )
    .unwrap();
    assert_ne!(opslens_vlm::embed::model_id(&copy), id);
}
