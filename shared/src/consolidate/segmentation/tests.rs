//! Segmentation consolidation: PNG formats in and out, limits, the output contract, and a synthetic crowd
//! with boundary noise and biased workers (scored against plain per-pixel majority vote).

use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::output::LabelBody;

use super::*;

const BIRD: Rgb = [0x2c, 0xa0, 0x2c];
const CAT: Rgb = [0xd6, 0x27, 0x28];

fn labels(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// Encodes `pixels` (one entry per pixel, `channels` bytes each) as a PNG of the given colour type.
fn png_bytes(
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    palette: Option<Vec<u8>>,
    data: &[u8],
) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(color);
    encoder.set_depth(depth);
    if let Some(palette) = palette {
        encoder.set_palette(palette);
    }
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
    bytes
}

/// An RGB PNG of a class mask, painting class 1 in BIRD and class 2 in CAT on white.
fn rgb_png(width: u32, height: u32, classes: &[u8]) -> Vec<u8> {
    let data: Vec<u8> = classes
        .iter()
        .flat_map(|class| match class {
            1 => BIRD,
            2 => CAT,
            _ => BACKGROUND_COLOR,
        })
        .collect();
    png_bytes(
        width,
        height,
        png::ColorType::Rgb,
        png::BitDepth::Eight,
        None,
        &data,
    )
}

fn answer_with(png: &[u8], width: u32, height: u32) -> Value {
    json!({
        "inputImageProperties": {"height": height, "width": width},
        "labelMappings": {"Bird": {"color": "#2ca02c"}, "Cat": {"color": "#D62728"}},
        "labeledImage": {"pngImageData": base64::engine::general_purpose::STANDARD.encode(png)}
    })
}

fn decode_output(png: &[u8]) -> (ImageSize, Vec<u8>, Vec<u8>) {
    let mut decoder = png::Decoder::new(Cursor::new(png));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().unwrap();
    let info = reader.info();
    assert_eq!(info.color_type, png::ColorType::Indexed);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let palette = info.palette.as_ref().unwrap().to_vec();
    let size = ImageSize {
        width: info.width,
        height: info.height,
    };
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buffer).unwrap();
    (size, buffer, palette)
}

fn run(
    answers: &[Value],
    job_labels: &[String],
) -> Result<SegmentationConsolidation, SegmentationError> {
    let ids: Vec<String> = (0..answers.len()).map(|i| format!("w{i}")).collect();
    let workers: Vec<WorkerAnswer<'_, SegmentationOutput<'_>>> = answers
        .iter()
        .zip(&ids)
        .map(|(answer, id)| WorkerAnswer::new(id, parse_segmentation_answer(answer)))
        .collect();
    let job = SegmentationJob { labels: job_labels };
    consolidate_segmentation(&workers, &job, &SegmentationConfig::default())
}

/// `masks` as raw-mask workers named by `ids`, all of one reliability.
fn worker_masks<'a>(
    masks: &'a [Vec<u8>],
    ids: &'a [String],
    reliability: Option<f64>,
) -> Vec<WorkerMask<'a>> {
    masks
        .iter()
        .zip(ids)
        .map(|(m, id)| WorkerMask {
            worker_id: id,
            classes: m,
            reliability,
        })
        .collect()
}

/// 8×4 image: bird in columns 1–3, cat in columns 5–6.
fn small_truth() -> Vec<u8> {
    (0..32)
        .map(|i| match i % 8 {
            1..=3 => 1,
            5 | 6 => 2,
            _ => 0,
        })
        .collect()
}

#[test]
fn parses_the_documented_answer_and_colours() {
    let content = r##"{"crowd-semantic-segmentation":{"inputImageProperties":{"height":2000,"width":3020},"labelMappings":{"Bird":{"color":"#2ca02c"}},"labeledImage":{"pngImageData":"iVBOR..."}}}"##;
    let wrapped: Value = serde_json::from_str(content).unwrap();
    let parsed = parse_segmentation_answer(&wrapped["crowd-semantic-segmentation"]).unwrap();
    assert_eq!(
        parsed.image_size,
        Some(ImageSize {
            width: 3020,
            height: 2000
        })
    );
    assert_eq!(parsed.label_colors, vec![("Bird".into(), BIRD)]);
    assert_eq!(parsed.png_base64, "iVBOR...");
    assert_eq!(parse_hex_color("#FFF"), Some([255, 255, 255]));
    assert_eq!(parse_hex_color("2ca02c"), None);
    assert_eq!(parse_hex_color("#2ca02g"), None);
    assert_eq!(hex_color(BIRD), "#2ca02c");
    assert_eq!(
        parse_segmentation_answer(&json!({"labelMappings": {}})),
        Err(SegmentationAnswerError::MissingImage)
    );
    assert_eq!(
        parse_segmentation_answer(&json!([])),
        Err(SegmentationAnswerError::NotAnObject)
    );
}

#[test]
fn output_is_an_indexed_png_with_the_internal_color_map() {
    let truth = small_truth();
    let png = rgb_png(8, 4, &truth);
    let mut sloppy = truth.clone();
    sloppy[0] = 1; // one stray pixel
    let answers = [
        answer_with(&png, 8, 4),
        answer_with(&png, 8, 4),
        answer_with(&rgb_png(8, 4, &sloppy), 8, 4),
    ];
    let result = run(&answers, &labels(&["Bird", "Cat", "Dog"])).unwrap();
    let (size, pixels, palette) = decode_output(&result.png);
    assert_eq!(
        size,
        ImageSize {
            width: 8,
            height: 4
        }
    );
    assert_eq!(pixels, truth);
    assert_eq!(
        &palette[..12],
        &[
            255, 255, 255, 0x2c, 0xa0, 0x2c, 0xd6, 0x27, 0x28, 0x1f, 0x77, 0xb4
        ]
    );
    let confidence = result.confidence;
    assert!(confidence > 0.5 && confidence <= 1.0, "{confidence}");
    assert_eq!(
        result.internal_color_map(),
        json!({
            "0": {"class-name": "BACKGROUND", "hex-color": "#ffffff", "confidence": confidence},
            "1": {"class-name": "Bird", "hex-color": "#2ca02c", "confidence": confidence},
            "2": {"class-name": "Cat", "hex-color": "#d62728", "confidence": confidence},
            "3": {"class-name": "Dog", "hex-color": "#1f77b4", "confidence": confidence}
        })
    );
    assert_eq!(
        serde_json::to_string(&result.internal_color_map()["0"]).unwrap(),
        format!(
            r##"{{"class-name":"BACKGROUND","hex-color":"#ffffff","confidence":{confidence}}}"##
        )
    );
    assert_eq!(
        LabelBody::Mask(result.output(String::new())).metadata_json()["internal-color-map"],
        result.internal_color_map()
    );
    assert_eq!(result.agreements.len(), 3);
    assert_eq!(result.agreements[0].agreed, 1.0);
    assert!(result.agreements[2].agreed < 1.0);
}

#[test]
fn every_png_colour_type_is_read() {
    let truth = small_truth();
    let colors: Vec<Rgb> = truth
        .iter()
        .map(|c| match c {
            1 => BIRD,
            2 => CAT,
            _ => BACKGROUND_COLOR,
        })
        .collect();
    let rgba: Vec<u8> = colors
        .iter()
        .zip(&truth)
        // Background as fully transparent black: transparent means unpainted.
        .flat_map(|(rgb, class)| {
            if *class == 0 {
                [0, 0, 0, 0]
            } else {
                [rgb[0], rgb[1], rgb[2], 255]
            }
        })
        .collect();
    let rgb16: Vec<u8> = colors.iter().flatten().flat_map(|&v| [v, v]).collect();
    let indexed: Vec<u8> = truth.clone();
    let palette: Vec<u8> = [BACKGROUND_COLOR, BIRD, CAT]
        .iter()
        .flatten()
        .copied()
        .collect();
    let pngs = [
        png_bytes(
            8,
            4,
            png::ColorType::Rgba,
            png::BitDepth::Eight,
            None,
            &rgba,
        ),
        png_bytes(
            8,
            4,
            png::ColorType::Rgb,
            png::BitDepth::Sixteen,
            None,
            &rgb16,
        ),
        png_bytes(
            8,
            4,
            png::ColorType::Indexed,
            png::BitDepth::Eight,
            Some(palette),
            &indexed,
        ),
    ];
    for png in pngs {
        let answer = answer_with(&png, 8, 4);
        let result = run(&[answer.clone(), answer], &labels(&["Bird", "Cat"])).unwrap();
        assert_eq!(decode_output(&result.png).1, truth);
    }
    // Grey masks (e.g. 0/255 from other tools): a grey level is a colour like any other.
    let grey: Vec<u8> = truth
        .iter()
        .map(|&c| if c == 1 { 0 } else { 255 })
        .collect();
    let png = png_bytes(
        8,
        4,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        None,
        &grey,
    );
    let mut answer = answer_with(&png, 8, 4);
    answer["labelMappings"] = json!({"Bird": {"color": "#000000"}});
    let result = run(&[answer.clone(), answer], &labels(&["Bird", "Cat"])).unwrap();
    let expected: Vec<u8> = truth.iter().map(|&c| u8::from(c == 1)).collect();
    assert_eq!(decode_output(&result.png).1, expected);
}

/// The block-wise row conversion (`classes_of_row`) gives every pixel the class the per-pixel rule gives it:
/// rows of runs whose colours change anywhere in a block of sixteen, with transparent pixels, unknown
/// colours, and rows of every length (partial last blocks), for one to four samples a pixel.
#[test]
fn rows_convert_block_wise_as_pixel_by_pixel() {
    fn check<const N: usize>(rng: &mut StdRng) {
        let colors = [
            (rgb_key(BIRD), 1u8),
            (rgb_key(CAT), 2),
            (rgb_key([7, 7, 7]), 3),
        ];
        // Pixels drawn from a few values (known colours, an unknown one, transparent ones).
        let palette: Vec<[u8; N]> = [BIRD, CAT, [7, 7, 7], [1, 2, 3], BACKGROUND_COLOR]
            .iter()
            .flat_map(|rgb| {
                let opaque: [u8; N] = std::array::from_fn(|i| match (N, i) {
                    (1 | 2, 0) => rgb[0],
                    (2, _) | (4, 3) => 255,
                    (_, i) => rgb[i],
                });
                let mut transparent = opaque;
                if N == 2 || N == 4 {
                    transparent[N - 1] = 0;
                }
                [opaque, transparent]
            })
            .collect();
        for length in [0, 1, 15, 16, 17, 40, 256] {
            let mut row: Vec<[u8; N]> = Vec::with_capacity(length);
            while row.len() < length {
                let pixel = palette[rng.random_range(0..palette.len())];
                let run = rng.random_range(1..40).min(length - row.len());
                row.extend(std::iter::repeat_n(pixel, run));
            }
            let bytes: Vec<u8> = row.iter().flatten().copied().collect();
            let mut lookup = ColorLookup::new(&colors);
            let mut blockwise = vec![9u8; length];
            classes_of_row::<N>(&bytes, &mut blockwise, &mut lookup);
            let mut lookup = ColorLookup::new(&colors);
            let one_by_one: Vec<u8> = row
                .iter()
                .map(|pixel| class_of_pixel(pixel, &mut lookup))
                .collect();
            assert_eq!(blockwise, one_by_one, "{N} samples, {length} pixels");
        }
    }
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..20 {
        check::<1>(&mut rng);
        check::<2>(&mut rng);
        check::<3>(&mut rng);
        check::<4>(&mut rng);
    }
}

/// An Adam7-interlaced 8-bit RGB PNG, written by hand (the png crate does not encode interlaced images):
/// passes of filter-0 scanlines in stored (uncompressed) deflate blocks.
fn interlaced_rgb_png(width: u32, height: u32, rgb: &[[u8; 3]]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    const PASSES: [(u32, u32, u32, u32); 7] = [
        (0, 0, 8, 8),
        (4, 0, 8, 8),
        (0, 4, 4, 8),
        (2, 0, 4, 4),
        (0, 2, 2, 4),
        (1, 0, 2, 2),
        (0, 1, 1, 2),
    ];
    let mut raw = Vec::new();
    for (x0, y0, dx, dy) in PASSES {
        if x0 >= width || y0 >= height {
            continue;
        }
        for y in (y0..height).step_by(dy as usize) {
            raw.push(0); // filter: none
            for x in (x0..width).step_by(dx as usize) {
                raw.extend_from_slice(&rgb[(y * width + x) as usize]);
            }
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == blocks.len()));
        zlib.extend_from_slice(&(block.len() as u16).to_le_bytes());
        zlib.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 1]); // 8-bit RGB, deflate, adaptive filtering, Adam7
    chunk(&mut png, b"IHDR", &header);
    chunk(&mut png, b"IDAT", &zlib);
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn interlaced_pngs_are_read() {
    let truth = small_truth();
    let rgb: Vec<[u8; 3]> = truth
        .iter()
        .map(|c| match c {
            1 => BIRD,
            2 => CAT,
            _ => BACKGROUND_COLOR,
        })
        .collect();
    let png = interlaced_rgb_png(8, 4, &rgb);
    // The reference decoder agrees that it is a valid interlaced image of the truth.
    let mut decoder = png::Decoder::new(Cursor::new(png.as_slice()));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().unwrap();
    assert!(reader.info().interlaced);
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    reader.next_frame(&mut buffer).unwrap();
    assert_eq!(buffer, rgb.iter().flatten().copied().collect::<Vec<u8>>());
    let answer = answer_with(&png, 8, 4);
    let result = run(&[answer.clone(), answer], &labels(&["Bird", "Cat"])).unwrap();
    assert_eq!(decode_output(&result.png).1, truth);
}

#[test]
fn a_lone_worker_gets_its_mask_with_confidence_zero() {
    let truth = small_truth();
    let answer = answer_with(&rgb_png(8, 4, &truth), 8, 4);
    let result = run(std::slice::from_ref(&answer), &[]).unwrap();
    assert_eq!(decode_output(&result.png).1, truth);
    assert_eq!(result.confidence, 0.0);
    assert!(result.agreements.is_empty());
    // Without a label file, classes follow the sorted labels mapped.
    let names: Vec<&str> = result.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["BACKGROUND", "Bird", "Cat"]);
}

#[test]
fn unmapped_colours_and_unknown_labels_are_background() {
    let truth = small_truth();
    let answer = answer_with(&rgb_png(8, 4, &truth), 8, 4);
    // The job only knows Cat: Bird's pixels become background, with a reason.
    let result = run(&[answer.clone(), answer], &labels(&["Cat"])).unwrap();
    let expected: Vec<u8> = truth.iter().map(|&c| if c == 2 { 1 } else { 0 }).collect();
    assert_eq!(decode_output(&result.png).1, expected);
    assert!(result.dropped.iter().any(|d| d.reason.contains("`Bird`")));
}

#[test]
fn broken_and_mismatched_workers_are_skipped() {
    let truth = small_truth();
    let good = answer_with(&rgb_png(8, 4, &truth), 8, 4);
    let other_size = answer_with(&rgb_png(4, 8, &truth), 8, 4);
    let mut not_base64 = good.clone();
    not_base64["labeledImage"]["pngImageData"] = json!("***");
    let mut not_png = good.clone();
    not_png["labeledImage"]["pngImageData"] = json!("aGVsbG8gd29ybGQ=");
    let mut truncated = good.clone();
    let png = rgb_png(8, 4, &truth);
    truncated["labeledImage"]["pngImageData"] =
        json!(base64::engine::general_purpose::STANDARD.encode(&png[..png.len() / 2]));
    let answers = [
        good.clone(),
        other_size,
        not_base64,
        not_png,
        truncated,
        json!(1),
        good,
    ];
    let result = run(&answers, &labels(&["Bird", "Cat"])).unwrap();
    assert_eq!(decode_output(&result.png).1, truth);
    let mut skipped: Vec<&str> = result
        .dropped
        .iter()
        .map(|d| d.worker_id.as_str())
        .collect();
    skipped.sort_unstable();
    assert_eq!(skipped, vec!["w1", "w2", "w3", "w4", "w5"]);
    assert!(
        result
            .dropped
            .iter()
            .any(|d| d.reason.contains("the mask is 4x8, the image 8x4"))
    );

    let nothing = run(&[json!({})], &[]).unwrap_err();
    assert!(matches!(nothing, SegmentationError::NoUsableAnswer(_)));
}

#[test]
fn oversized_images_and_decompression_bombs_are_refused_before_decoding() {
    // The answer claims a 100-megapixel image: refused as a whole, nothing decoded.
    let truth = small_truth();
    let answer = answer_with(&rgb_png(8, 4, &truth), 10_000, 10_000);
    match run(std::slice::from_ref(&answer), &[]) {
        Err(SegmentationError::TooLarge { pixels, .. }) => assert_eq!(pixels, 100_000_000),
        other => panic!("{other:?}"),
    }
    // A tiny PNG whose header claims 60,000 × 60,000 pixels (a bomb) with an honest-looking answer: its
    // header is refused before any buffer is allocated.
    let mut bomb = Vec::new();
    {
        let encoder = png::Encoder::new(&mut bomb, 60_000, 60_000);
        let writer = encoder.write_header().unwrap();
        drop(writer);
    }
    assert!(bomb.len() < 100);
    let honest = answer_with(&rgb_png(8, 4, &truth), 8, 4);
    let mut lying = answer_with(&bomb, 8, 4);
    lying["inputImageProperties"] = json!({"width": 8, "height": 4});
    let result = run(&[honest.clone(), lying, honest], &labels(&["Bird", "Cat"])).unwrap();
    assert!(
        result
            .dropped
            .iter()
            .any(|d| d.reason.contains("over the limit")),
        "{:?}",
        result.dropped
    );
    // Over the base64 size limit.
    let workers = [WorkerAnswer::new("w", parse_segmentation_answer(&answer))];
    let config = SegmentationConfig {
        max_png_bytes: 10,
        max_pixels: 200_000_000,
        ..SegmentationConfig::default()
    };
    let error = consolidate_segmentation(&workers, &SegmentationJob::default(), &config);
    assert!(matches!(error, Err(SegmentationError::NoUsableAnswer(_))));
}

#[test]
fn raw_masks_of_the_wrong_length_are_skipped() {
    let truth = small_truth();
    let short = vec![0u8; 5];
    let masks = [
        WorkerMask {
            worker_id: "a",
            classes: &truth,
            reliability: None,
        },
        WorkerMask {
            worker_id: "b",
            classes: &short,
            reliability: None,
        },
        WorkerMask {
            worker_id: "c",
            classes: &truth,
            reliability: Some(0.9),
        },
    ];
    let size = ImageSize {
        width: 8,
        height: 4,
    };
    let result = consolidate_masks(&masks, size, 3, &SegmentationConfig::default()).unwrap();
    assert_eq!(result.classes, truth);
    assert_eq!(result.dropped.len(), 1);
    // Two agreeing workers on a 20-pixel painted region: the reliability prior still weighs in.
    assert!(result.confidence > 0.6, "{result:?}");
}

#[test]
fn many_classes_and_workers_use_interned_patterns() {
    // 12 classes × 9 workers: 12⁹ possible patterns, far beyond the radix table.
    let mut rng = StdRng::seed_from_u64(3);
    let size = ImageSize {
        width: 40,
        height: 30,
    };
    let truth: Vec<u8> = (0..1200).map(|i| ((i / 40) % 12) as u8).collect();
    let masks: Vec<Vec<u8>> = (0..9)
        .map(|_| {
            truth
                .iter()
                .map(|&c| {
                    if rng.random_bool(0.1) {
                        rng.random_range(0..12)
                    } else {
                        c
                    }
                })
                .collect()
        })
        .collect();
    let ids: Vec<String> = (0..9).map(|i| format!("w{i}")).collect();
    let workers = worker_masks(&masks, &ids, None);
    let result = consolidate_masks(&workers, size, 12, &SegmentationConfig::default()).unwrap();
    assert_eq!(result.classes, truth);
}

/// The word-at-a-time fast path (`votes::infer_masks`) must give the general path's result bit for bit:
/// odd widths (row tails), one to eight workers, up to 256 classes, classes past the table, single rows
/// and columns, unanimous pixels decided against their class, with and without cleaning.
#[test]
fn the_fast_path_matches_the_general_path() {
    let mut rng = StdRng::seed_from_u64(11);
    let cases: [(usize, usize, usize, usize); 13] = [
        (64, 64, 2, 5),
        (37, 23, 2, 5),
        (130, 17, 3, 5),
        (8, 1, 2, 3),
        (1, 9, 2, 2),
        (71, 40, 4, 4),
        (64, 3, 2, 8),
        (20, 20, 1, 4),
        (16, 16, 2, 1),
        (24, 24, 16, 2),
        (40, 5, 256, 1),
        (200, 33, 2, 7),
        (129, 65, 6, 3),
    ];
    for (case, &(width, height, classes, workers)) in cases.iter().enumerate() {
        for round in 0..4 {
            let pixels = width * height;
            let (cy, cx) = (
                rng.random_range(0.0..height as f64),
                rng.random_range(0.0..width as f64),
            );
            let radius = rng.random_range(1.0..(width.max(height) as f64));
            let invalid = round == 3;
            let masks: Vec<Vec<u8>> = (0..workers)
                .map(|_| {
                    let (dy, dx) = (rng.random_range(-3.0..3.0), rng.random_range(-3.0..3.0));
                    let grow = rng.random_range(-2.0..2.0);
                    let class = rng.random_range(0..classes) as u8;
                    (0..pixels)
                        .map(|p| {
                            let (y, x) = ((p / width) as f64, (p % width) as f64);
                            let inside = (y - cy - dy).hypot(x - cx - dx) <= radius + grow;
                            if invalid && rng.random_bool(0.02) {
                                rng.random_range(classes.min(255)..=255) as u8
                            } else if rng.random_bool(0.03) {
                                rng.random_range(0..classes) as u8
                            } else if inside {
                                class
                            } else {
                                0
                            }
                        })
                        .collect()
                })
                .collect();
            let slices: Vec<&[u8]> = masks.iter().map(Vec::as_slice).collect();
            // Round 2: workers known to be nearly always wrong, and a prior that outweighs the image, so
            // that unanimous pixels are decided against their class (the fast path's rare full pass 2).
            let contrary = round == 2;
            let reliabilities: Vec<f64> = (0..workers)
                .map(|w| match (contrary, w % 2) {
                    (true, _) => 0.02,
                    (false, 0) => 0.7,
                    (false, _) => 0.9,
                })
                .collect();
            for smooth in [true, false] {
                let params = SegmentationConfig {
                    smooth,
                    prior_strength: if contrary { 1e9 } else { 50.0 },
                    ..SegmentationConfig::default()
                }
                .inference();
                let fast =
                    votes::infer_masks(&slices, width, height, classes, &reliabilities, params)
                        .expect("the fast path takes these");
                let patterns =
                    votes::patterns_of_masks(&slices, pixels, classes).unwrap_or_else(|| {
                        let mut accumulator = PatternAccumulator::new(pixels, classes, workers);
                        for mask in &slices {
                            accumulator.add(mask);
                        }
                        accumulator.finish()
                    });
                let general = votes::infer(&patterns, width, height, &reliabilities, params);
                let what = format!("case {case} round {round} smooth {smooth}");
                assert_eq!(fast.mask, general.mask, "{what}");
                assert_eq!(
                    fast.expected_iou.to_bits(),
                    general.expected_iou.to_bits(),
                    "{what}"
                );
                assert_eq!(fast.worker_agreement, general.worker_agreement, "{what}");
            }
        }
    }
}

/// Empty images (no rows, or no columns) go through both paths without a panic (proptest found a
/// zero-row image tripping the edge scan once).
#[test]
fn empty_images_are_consolidated() {
    for (width, height) in [(1, 0), (0, 1), (0, 0), (9, 0)] {
        let empty: Vec<u8> = Vec::new();
        let ids = ["a", "b"];
        let workers: Vec<WorkerMask<'_>> = ids
            .iter()
            .map(|id| WorkerMask {
                worker_id: id,
                classes: &empty,
                reliability: None,
            })
            .collect();
        for classes in [0, 2, 3] {
            let size = ImageSize { width, height };
            let result = consolidate_masks(&workers, size, classes, &SegmentationConfig::default())
                .expect("empty masks of an empty image are usable");
            assert!(result.classes.is_empty());
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Synthetic crowd with known truth: two objects (an ellipse of class 1, a rectangle of class 2) per image,
// workers with boundary noise, specks, and biases (painting generously, sparingly, or confusing classes).

#[derive(Debug, Clone, Copy)]
struct Profile {
    /// Added to every shape's half-size, pixels: positive paints generously, negative sparingly.
    grow: f64,
    /// Standard deviation of a per-shape offset, pixels.
    shift: f64,
    /// Chance per pixel to paint a random class (specks).
    speck: f64,
    /// Chance to paint the rectangle with the ellipse's class.
    confuse: f64,
}

/// Every worker has its own failing: one is careful, one paints generously, one sparingly, one confuses the
/// two classes, one is sloppy and speckled. No bias is shared by a majority (a crowd-wide bias cannot be
/// undone without gold answers).
const PROFILES: [Profile; 5] = [
    Profile {
        grow: 0.0,
        shift: 0.7,
        speck: 0.002,
        confuse: 0.0,
    },
    Profile {
        grow: 3.0,
        shift: 1.5,
        speck: 0.005,
        confuse: 0.05,
    },
    Profile {
        grow: -3.0,
        shift: 1.5,
        speck: 0.005,
        confuse: 0.05,
    },
    Profile {
        grow: 0.0,
        shift: 2.0,
        speck: 0.01,
        confuse: 0.6,
    },
    Profile {
        grow: 1.0,
        shift: 4.0,
        speck: 0.04,
        confuse: 0.1,
    },
];

const SIDE: usize = 64;

struct Shapes {
    ellipse: (f64, f64, f64, f64),
    rectangle: (f64, f64, f64, f64),
}

fn paint(shapes: &Shapes, grow: f64, shifts: [(f64, f64); 2], rectangle_class: u8) -> Vec<u8> {
    let mut mask = vec![0u8; SIDE * SIDE];
    let (cy, cx, ry, rx) = shapes.ellipse;
    let (ty, tx, hy, hx) = shapes.rectangle;
    for y in 0..SIDE {
        for x in 0..SIDE {
            let (fy, fx) = (y as f64 + 0.5, x as f64 + 0.5);
            let (ey, ex) = (fy - cy - shifts[0].0, fx - cx - shifts[0].1);
            if (ey / (ry + grow)).powi(2) + (ex / (rx + grow)).powi(2) <= 1.0 {
                mask[y * SIDE + x] = 1;
            }
            let (qy, qx) = (fy - ty - shifts[1].0, fx - tx - shifts[1].1);
            if qy.abs() <= hy + grow && qx.abs() <= hx + grow {
                mask[y * SIDE + x] = rectangle_class;
            }
        }
    }
    mask
}

fn synthetic_image(rng: &mut StdRng) -> (Vec<u8>, Vec<Vec<u8>>) {
    let s = SIDE as f64;
    let shapes = Shapes {
        ellipse: (
            rng.random_range(0.3..0.7) * s,
            rng.random_range(0.3..0.7) * s,
            rng.random_range(6.0..14.0),
            rng.random_range(6.0..14.0),
        ),
        rectangle: (
            rng.random_range(0.2..0.8) * s,
            rng.random_range(0.2..0.8) * s,
            rng.random_range(4.0..10.0),
            rng.random_range(4.0..10.0),
        ),
    };
    let truth = paint(&shapes, 0.0, [(0.0, 0.0); 2], 2);
    let workers = PROFILES
        .iter()
        .map(|profile| {
            let mut shift = || {
                let normal = rand_distr::Normal::new(0.0, profile.shift).unwrap();
                (
                    rand_distr::Distribution::sample(&normal, rng),
                    rand_distr::Distribution::sample(&normal, rng),
                )
            };
            let shifts = [shift(), shift()];
            let rectangle_class = if rng.random_bool(profile.confuse) {
                1
            } else {
                2
            };
            let mut mask = paint(&shapes, profile.grow, shifts, rectangle_class);
            for pixel in &mut mask {
                if rng.random_bool(profile.speck) {
                    *pixel = rng.random_range(0..3);
                }
            }
            mask
        })
        .collect();
    (truth, workers)
}

/// Mean IoU over the foreground classes in the truth or the prediction.
fn mean_iou(predicted: &[u8], truth: &[u8], classes: u8) -> f64 {
    let ious: Vec<f64> = (1..classes)
        .filter_map(|k| {
            let intersection = predicted
                .iter()
                .zip(truth)
                .filter(|(p, t)| **p == k && **t == k)
                .count();
            let union = predicted
                .iter()
                .zip(truth)
                .filter(|(p, t)| **p == k || **t == k)
                .count();
            (union > 0).then(|| intersection as f64 / union as f64)
        })
        .collect();
    ious.iter().sum::<f64>() / ious.len().max(1) as f64
}

/// Plain per-pixel majority vote (ties to the smaller class).
pub(crate) fn majority_vote(masks: &[&[u8]], classes: usize) -> Vec<u8> {
    let pixels = masks.first().map_or(0, |m| m.len());
    let mut votes = vec![0u32; classes];
    (0..pixels)
        .map(|pixel| {
            votes.iter_mut().for_each(|v| *v = 0);
            for mask in masks {
                votes[usize::from(mask[pixel]).min(classes - 1)] += 1;
            }
            let best = votes.iter().copied().max().unwrap_or(0);
            votes.iter().position(|&v| v == best).unwrap_or(0) as u8
        })
        .collect()
}

#[test]
fn beats_per_pixel_majority_vote_on_biased_workers() {
    let mut rng = StdRng::seed_from_u64(5);
    let size = ImageSize {
        width: SIDE as u32,
        height: SIDE as u32,
    };
    let ids: Vec<String> = (0..PROFILES.len()).map(|i| format!("w{i}")).collect();
    let (mut ours, mut baseline, mut unsmoothed) = (0.0, 0.0, 0.0);
    let (mut calibration_error, mut confidence_sum) = (0.0, 0.0);
    let images = 60;
    for _ in 0..images {
        let (truth, masks) = synthetic_image(&mut rng);
        let workers = worker_masks(&masks, &ids, None);
        let result = consolidate_masks(&workers, size, 3, &SegmentationConfig::default()).unwrap();
        let iou = mean_iou(&result.classes, &truth, 3);
        ours += iou;
        calibration_error += (result.expected_iou - iou).abs();
        confidence_sum += result.expected_iou;
        let plain = consolidate_masks(
            &workers,
            size,
            3,
            &SegmentationConfig {
                smooth: false,
                ..SegmentationConfig::default()
            },
        )
        .unwrap();
        unsmoothed += mean_iou(&plain.classes, &truth, 3);
        let refs: Vec<&[u8]> = masks.iter().map(Vec::as_slice).collect();
        baseline += mean_iou(&majority_vote(&refs, 3), &truth, 3);
    }
    let (ours, baseline, unsmoothed) = (
        ours / images as f64,
        baseline / images as f64,
        unsmoothed / images as f64,
    );
    let calibration_error = calibration_error / images as f64;
    let mean_confidence = confidence_sum / images as f64;
    eprintln!(
        "segmentation: ours mIoU {ours:.4} (without smoothing {unsmoothed:.4}) | per-pixel majority vote {baseline:.4} | mean confidence {mean_confidence:.3}, mean |confidence - IoU| {calibration_error:.3}"
    );
    assert!(ours > baseline + 0.01);
    assert!(ours >= unsmoothed);
    assert!(calibration_error < 0.1);
}

/// Side by side with crowd-kit on the very masks its bench generator wrote:
/// `python crowdkit_bench.py gen-seg --out DIR` then
/// `GROUNDWORK_SEG_DIR=DIR cargo test -p groundwork --release crowdkit_masks -- --ignored --nocapture`.
#[test]
#[ignore = "needs masks written by tests/scripts/crowdkit/crowdkit_bench.py gen-seg"]
fn crowdkit_masks() {
    let Ok(dir) = std::env::var("GROUNDWORK_SEG_DIR") else {
        eprintln!("GROUNDWORK_SEG_DIR not set");
        return;
    };
    let read = |path: &std::path::Path| -> (ImageSize, Vec<u8>) {
        let bytes = std::fs::read(path).unwrap();
        let mut decoder = png::Decoder::new(Cursor::new(bytes.as_slice()));
        decoder.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = decoder.read_info().unwrap();
        let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
        let frame = reader.next_frame(&mut buffer).unwrap();
        let channels = frame.color_type.samples();
        let mask = buffer
            .chunks(channels)
            .map(|p| u8::from(p[0] > 127))
            .collect();
        (
            ImageSize {
                width: frame.width,
                height: frame.height,
            },
            mask,
        )
    };
    let mut tasks: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    tasks.sort();
    let (mut ours, mut baseline, mut confidence_error) = (Vec::new(), Vec::new(), 0.0);
    let mut predicted = Vec::new();
    let mut elapsed = std::time::Duration::ZERO;
    for task in &tasks {
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(task)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let (_, gold) = read(&task.join("gold.png"));
        let workers: Vec<(String, ImageSize, Vec<u8>)> = files
            .iter()
            .filter(|f| f.file_name().is_some_and(|n| n != "gold.png"))
            .map(|f| {
                let (size, mask) = read(f);
                (
                    f.file_stem().unwrap().to_string_lossy().into_owned(),
                    size,
                    mask,
                )
            })
            .collect();
        let size = workers[0].1;
        let masks: Vec<WorkerMask<'_>> = workers
            .iter()
            .map(|(id, _, mask)| WorkerMask {
                worker_id: id,
                classes: mask,
                reliability: None,
            })
            .collect();
        let started = std::time::Instant::now();
        let result = consolidate_masks(&masks, size, 2, &SegmentationConfig::default()).unwrap();
        elapsed += started.elapsed();
        let iou = mean_iou(&result.classes, &gold, 2);
        confidence_error += (result.expected_iou - iou).abs();
        predicted.push(result.expected_iou);
        ours.push(iou);
        let refs: Vec<&[u8]> = workers.iter().map(|w| w.2.as_slice()).collect();
        baseline.push(mean_iou(&majority_vote(&refs, 2), &gold, 2));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mp, ma) = (mean(&predicted), mean(&ours));
    let covariance: f64 = predicted
        .iter()
        .zip(&ours)
        .map(|(p, a)| (p - mp) * (a - ma))
        .sum();
    let spread = |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>().sqrt();
    eprintln!(
        "confidence: mean {mp:.3} vs IoU {ma:.3}, correlation {:.3}",
        covariance / (spread(&predicted, mp) * spread(&ours, ma))
    );
    eprintln!(
        "crowd-kit masks ({} images): ours mIoU {:.4} | our majority vote {:.4} | mean |confidence - IoU| {:.3} | ours {:.1} ms",
        tasks.len(),
        mean(&ours),
        mean(&baseline),
        confidence_error / tasks.len() as f64,
        elapsed.as_secs_f64() * 1e3
    );
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    fn arbitrary_png() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            // Valid PNGs of random small sizes and colour types.
            (1u32..6, 1u32..6, 0usize..4, any::<u64>()).prop_map(|(width, height, kind, seed)| {
                let mut rng = StdRng::seed_from_u64(seed);
                let (color, channels) = [
                    (png::ColorType::Rgb, 3),
                    (png::ColorType::Rgba, 4),
                    (png::ColorType::Grayscale, 1),
                    (png::ColorType::GrayscaleAlpha, 2),
                ][kind];
                let colours = [[0x2c, 0xa0, 0x2c, 255], [255, 255, 255, 255], [1, 2, 3, 0]];
                let data: Vec<u8> = (0..width * height)
                    .flat_map(|_| {
                        colours[rand::Rng::random_range(&mut rng, 0..3)][..channels].to_vec()
                    })
                    .collect();
                png_bytes(width, height, color, png::BitDepth::Eight, None, &data)
            }),
            // Garbage, and truncated PNGs.
            proptest::collection::vec(any::<u8>(), 0..64),
            (1u32..6, 1usize..40).prop_map(|(side, cut)| {
                let png = rgb_png(side, side, &vec![1; (side * side) as usize]);
                png[..cut.min(png.len())].to_vec()
            }),
        ]
    }

    fn arbitrary_answer() -> impl Strategy<Value = Value> {
        (
            arbitrary_png(),
            proptest::option::of((0u32..8, 0u32..8)),
            prop_oneof![
                Just(json!({"Bird": {"color": "#2ca02c"}})),
                Just(json!({"Bird": {"color": "red"}, "Cat": {}})),
                Just(json!({"Dog": {"color": "#FFFFFF"}})),
                Just(json!(null)),
                Just(json!([1])),
            ],
        )
            .prop_map(|(png, size, mappings)| {
                let mut answer = json!({
                    "labelMappings": mappings,
                    "labeledImage": {"pngImageData": base64::engine::general_purpose::STANDARD.encode(png)}
                });
                if let Some((width, height)) = size {
                    answer["inputImageProperties"] = json!({"width": width, "height": height});
                }
                answer
            })
    }

    proptest! {
        #[test]
        fn on_arbitrary_answers(answers in proptest::collection::vec(arbitrary_answer(), 0..4)) {
            let labels = labels(&["Bird", "Cat"]);
            for job_labels in [&labels[..], &[]] {
                if let Ok(result) = run(&answers, job_labels) {
                    let (size, pixels, palette) = decode_output(&result.png);
                    prop_assert_eq!(size, result.image_size);
                    prop_assert!(pixels.iter().all(|&p| usize::from(p) * 3 < palette.len()));
                    prop_assert!((0.0..=1.0).contains(&result.confidence));
                }
            }
        }

        #[test]
        fn on_arbitrary_masks(
            masks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..6),
            width in 0u32..8,
            height in 0u32..8,
            classes in 0usize..300,
        ) {
            let ids: Vec<String> = (0..masks.len()).map(|i| format!("w{i}")).collect();
            let workers = worker_masks(&masks, &ids, Some(0.8));
            let size = ImageSize { width, height };
            if let Ok(result) = consolidate_masks(&workers, size, classes, &SegmentationConfig::default()) {
                prop_assert_eq!(result.classes.len(), (width * height) as usize);
                prop_assert!((0.0..=1.0).contains(&result.confidence));
            }
        }

        #[test]
        fn fast_path_matches_general_path(
            width in 0usize..40,
            height in 0usize..12,
            workers in 1usize..7,
            classes in 1usize..5,
            seed in any::<u64>(),
        ) {
            // Masks of runs (so that whole words agree) with noise and now and then a class past the table.
            let mut rng = StdRng::seed_from_u64(seed);
            let mut draw = |range: std::ops::Range<usize>| rand::Rng::random_range(&mut rng, range);
            let pixels = width * height;
            let run = draw(3..20);
            let base: Vec<u8> = (0..pixels).map(|p| ((p / run) % classes) as u8).collect();
            let masks: Vec<Vec<u8>> = (0..workers)
                .map(|_| {
                    base.iter()
                        .map(|&c| match draw(0..40) {
                            0 => draw(0..256) as u8,
                            1..=4 => draw(0..classes) as u8,
                            _ => c,
                        })
                        .collect()
                })
                .collect();
            let slices: Vec<&[u8]> = masks.iter().map(Vec::as_slice).collect();
            let reliabilities = vec![0.8; workers];
            let params = SegmentationConfig::default().inference();
            if let Some(fast) =
                votes::infer_masks(&slices, width, height, classes, &reliabilities, params)
            {
                let patterns = votes::patterns_of_masks(&slices, pixels, classes)
                    .expect("radix ids fit when byte ids do");
                let general = votes::infer(&patterns, width, height, &reliabilities, params);
                prop_assert_eq!(fast.mask, general.mask);
                prop_assert_eq!(fast.expected_iou.to_bits(), general.expected_iou.to_bits());
                prop_assert_eq!(fast.worker_agreement, general.worker_agreement);
            }
        }
    }
}
