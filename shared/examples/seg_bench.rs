//! Times our segmentation consolidation on a folder of worker masks written by crowd-kit's generator
//! (`crowdkit_bench.py gen-seg`: `DIR/<task>/<worker>.png`, 0/255 grayscale, and `DIR/<task>/gold.png`)
//! and scores it against the gold masks, so that `tests/scripts/bench-seg.sh` can put it beside
//! crowd-kit's `SegmentationMajorityVote` on the very same masks. The PNGs are decoded once, the way
//! crowd-kit's loader reads them (a pixel is foreground when its value is above 127); the time is
//! [`consolidate_masks`] over every image, best of `--repeat` runs in this one process (warm, like the
//! Python side's best of 3 `fit_predict` calls).
//!
//! `cargo run --release -p groundwork --example seg_bench -- DIR [--repeat N] [--no-smooth]`
//! prints `ours time_s=… mean_IoU_vs_gold=… images=… plain_vote_s=… plain_vote_IoU=…`. `--no-smooth` turns
//! the cleaning of contested pixels off (`SegmentationConfig::smooth`), to see what it costs. The
//! `plain_vote` figures are a straightforward per-pixel majority vote in Rust on the same masks, timed the
//! same way: what the bare vote costs here, beside our EM and cleaning.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use groundwork::consolidate::boxes::ImageSize;
use groundwork::consolidate::segmentation::{SegmentationConfig, WorkerMask, consolidate_masks};

type Error = Box<dyn std::error::Error>;

/// One image: its size, the workers' masks (class 0/1 per pixel) with their names, and the gold mask.
struct Image {
    size: ImageSize,
    workers: Vec<(String, Vec<u8>)>,
    gold: Vec<u8>,
}

/// A grayscale (or colour: first channel) PNG as foreground flags: value > 127, like crowd-kit's loader.
fn read_mask(path: &Path) -> Result<(ImageSize, Vec<u8>), Error> {
    let mut decoder = png::Decoder::new(BufReader::new(File::open(path)?));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let mut buffer = vec![0u8; reader.output_buffer_size().ok_or("PNG too large")?];
    let frame = reader.next_frame(&mut buffer)?;
    let channels = frame.color_type.samples();
    let mask = buffer[..frame.buffer_size()]
        .chunks_exact(channels)
        .map(|pixel| u8::from(pixel[0] > 127))
        .collect();
    let size = ImageSize {
        width: frame.width,
        height: frame.height,
    };
    Ok((size, mask))
}

fn read_images(dir: &Path) -> Result<Vec<Image>, Error> {
    let mut tasks: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    tasks.sort();
    let mut images = Vec::new();
    for task in tasks {
        let mut files: Vec<_> = std::fs::read_dir(&task)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|e| e == "png"))
            .collect();
        files.sort();
        let (mut size, mut gold, mut workers) = (None, None, Vec::new());
        for file in files {
            let (got, mask) = read_mask(&file)?;
            size = Some(got);
            let name = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            if name == "gold" {
                gold = Some(mask);
            } else {
                workers.push((name, mask));
            }
        }
        if let (Some(size), Some(gold)) = (size, gold) {
            images.push(Image {
                size,
                workers,
                gold,
            });
        }
    }
    Ok(images)
}

fn iou(predicted: &[u8], gold: &[u8]) -> f64 {
    let (mut intersection, mut union) = (0usize, 0usize);
    for (&p, &g) in predicted.iter().zip(gold) {
        intersection += usize::from(p == 1 && g == 1);
        union += usize::from(p == 1 || g == 1);
    }
    intersection as f64 / union.max(1) as f64
}

/// Per pixel, class 1 when more than half the workers gave it: one byte-wise sum per mask (vectorised),
/// then a threshold.
fn plain_vote(workers: &[(String, Vec<u8>)]) -> Vec<u8> {
    let pixels = workers.first().map_or(0, |(_, mask)| mask.len());
    let mut votes = vec![0u8; pixels];
    for (_, mask) in workers {
        for (vote, &class) in votes.iter_mut().zip(mask) {
            *vote = vote.wrapping_add(class);
        }
    }
    let half = (workers.len() / 2) as u8;
    for vote in &mut votes {
        *vote = u8::from(*vote > half);
    }
    votes
}

/// The fastest of `repeat` (≥ 1) runs of `run`, in seconds, and the last run's result.
fn best_of<T, E: Into<Error>>(
    repeat: usize,
    mut run: impl FnMut() -> Result<T, E>,
) -> Result<(f64, T), Error> {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..repeat {
        let start = Instant::now();
        last = Some(run().map_err(Into::into)?);
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok((best, last.ok_or("no run")?))
}

/// Mean IoU of predicted masks against the images' gold masks, in order.
fn mean_iou<'a>(predicted: impl Iterator<Item = &'a [u8]>, images: &[Image]) -> f64 {
    predicted
        .zip(images)
        .map(|(mask, image)| iou(mask, &image.gold))
        .sum::<f64>()
        / images.len() as f64
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .first()
        .ok_or("usage: seg_bench DIR [--repeat N] [--no-smooth]")?;
    let repeat: usize = match args.iter().position(|a| a == "--repeat") {
        Some(i) => args.get(i + 1).ok_or("--repeat needs a number")?.parse()?,
        None => 10,
    };
    let images = read_images(Path::new(dir))?;
    if images.is_empty() {
        return Err(format!("no images under {dir}").into());
    }
    let config = SegmentationConfig {
        smooth: !args.iter().any(|a| a == "--no-smooth"),
        ..SegmentationConfig::default()
    };
    let repeat = repeat.max(1);
    let (best, results) = best_of(repeat, || {
        images
            .iter()
            .map(|image| {
                let workers: Vec<WorkerMask<'_>> = image
                    .workers
                    .iter()
                    .map(|(name, mask)| WorkerMask {
                        worker_id: name,
                        classes: mask,
                        reliability: None,
                    })
                    .collect();
                consolidate_masks(&workers, image.size, 2, &config)
            })
            .collect::<Result<Vec<_>, _>>()
    })?;
    let (plain_best, plain) = best_of(repeat, || {
        Ok::<_, Error>(
            images
                .iter()
                .map(|image| plain_vote(&image.workers))
                .collect::<Vec<_>>(),
        )
    })?;
    let miou = mean_iou(results.iter().map(|result| &result.classes[..]), &images);
    let plain_miou = mean_iou(plain.iter().map(Vec::as_slice), &images);
    println!(
        "ours time_s={best:.5} mean_IoU_vs_gold={miou:.4} images={} plain_vote_s={plain_best:.5} \
         plain_vote_IoU={plain_miou:.4}",
        images.len()
    );
    Ok(())
}
