//! `--suite site`: the release WASM's size (raw and brotli), the server-rendered home page's time
//! to first byte, and a real `baton serve`'s memory.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::measure::{kb, median, BenchArgs, ServerUnderTest};

pub fn wasm_size(args: &BenchArgs) -> anyhow::Result<()> {
    let path = args.site_root.join("pkg").join("baton.wasm");
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}; build the site first: cargo leptos build --release",
            path.display()
        )
    })?;
    let mut compressed = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut bytes.as_slice(), &mut compressed, &params)?;
    println!(
        "wasm.raw_bytes         {:>10}  ({:.1} KB)",
        bytes.len(),
        kb(bytes.len())
    );
    println!(
        "wasm.brotli_bytes      {:>10}  ({:.1} KB)",
        compressed.len(),
        kb(compressed.len())
    );
    Ok(())
}

pub async fn server_figures(args: &BenchArgs, server: &ServerUnderTest) -> anyhow::Result<()> {
    println!("rss.after_start_kib    {:>10}", server.rss_kib()?);
    let client = super::measure::client_with(&server.token)?
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let url = format!("http://{}/", server.addr);
    // Warm up: first renders fill caches and the connection pool.
    for _ in 0..10 {
        client.get(&url).send().await?.bytes().await?;
    }
    let mut medians = Vec::new();
    let mut p99s = Vec::new();
    for _ in 0..args.runs {
        let mut samples = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            let started = Instant::now();
            let response = client.get(&url).send().await?;
            samples.push(started.elapsed());
            if !response.status().is_success() {
                bail!("GET / answered {}", response.status());
            }
            response.bytes().await?;
        }
        samples.sort();
        medians.push(samples[samples.len() / 2]);
        p99s.push(samples[(samples.len() * 99 / 100).min(samples.len() - 1)]);
    }
    println!(
        "ssr.ttfb_median_us     {:>10}  (median of {} runs x {} requests; per-run medians {:?})",
        median(&mut medians).as_micros(),
        args.runs,
        args.requests,
        medians.iter().map(|d| d.as_micros()).collect::<Vec<_>>()
    );
    println!(
        "ssr.ttfb_p99_us        {:>10}",
        median(&mut p99s).as_micros()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "rss.idle_kib           {:>10}  (after the requests, 3 s idle)",
        server.rss_kib()?
    );
    Ok(())
}
