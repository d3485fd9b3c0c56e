//! Measures [`peersearch_crawler::extract`] on the article-extraction benchmark
//! (<https://github.com/scrapinghub/article-extraction-benchmark>), and shows what it
//! keeps of single pages. Not part of the test run; the benchmark's pages stay outside
//! the repository.
//!
//! ```sh
//! # writes $AEB_DIR/output/peersearch.json and prints the throughput; then run
//! # `python3 evaluate.py` in $AEB_DIR
//! AEB_DIR=/path/to/article-extraction-benchmark cargo run -p peersearch-crawler --example extract_eval
//! # prints title, headings, main text and chrome of local HTML files
//! cargo run -p peersearch-crawler --example extract_eval -- page.html ...
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use peersearch_crawler::extract;
use url::Url;

/// Passes over the benchmark for the throughput figure; the fastest counts.
const PASSES: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if !files.is_empty() {
        for file in files {
            show(Path::new(&file))?;
        }
        return Ok(());
    }
    let dir = PathBuf::from(std::env::var("AEB_DIR").map_err(|_| "set AEB_DIR or name files")?);
    let mut pages = Vec::new();
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir.join("html"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for path in names {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let Some(key) = name.strip_suffix(".html.gz") else {
            continue;
        };
        let mut html = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&path)?).read_to_end(&mut html)?;
        pages.push((key.to_owned(), html));
    }
    let ground_truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("ground-truth.json"))?)?;
    let bytes: usize = pages.iter().map(|(_, h)| h.len()).sum();
    let mut best = Duration::MAX;
    let mut output = serde_json::Map::new();
    for _ in 0..PASSES {
        output.clear();
        let mut elapsed = Duration::ZERO;
        for (key, html) in &pages {
            let url = ground_truth[key]["url"]
                .as_str()
                .and_then(|u| Url::parse(u).ok())
                .unwrap_or_else(|| Url::parse("http://example.com/").expect("valid url"));
            let start = Instant::now();
            let page = extract(html, Some("text/html; charset=utf-8"), &url)?;
            elapsed += start.elapsed();
            output.insert(key.clone(), serde_json::json!({ "articleBody": page.text }));
        }
        best = best.min(elapsed);
    }
    let out = serde_json::json!({ "version": env!("CARGO_PKG_VERSION"), "output": output });
    std::fs::create_dir_all(dir.join("output"))?;
    std::fs::write(
        dir.join("output/peersearch.json"),
        serde_json::to_vec(&out)?,
    )?;
    println!(
        "{} pages, {:.1} MB in {:.3} s: {:.1} MB/s (fastest of {PASSES} passes)",
        pages.len(),
        bytes as f64 / 1e6,
        best.as_secs_f64(),
        bytes as f64 / 1e6 / best.as_secs_f64()
    );
    Ok(())
}

fn show(path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let html = std::fs::read(path)?;
    let url = Url::parse("http://example.com/page.html")?;
    let page = extract(&html, Some("text/html"), &url)?;
    println!("== {}\ntitle: {}", path.display(), page.title);
    println!("headings: {:?}", page.headings);
    println!("links: {}", page.links.len());
    println!("--- text ({} bytes)\n{}", page.text.len(), page.text);
    println!("--- chrome ({} bytes)\n{}", page.chrome.len(), page.chrome);
    Ok(())
}
