//! The static assets, compiled into the binary: no page loads anything from outside the peer.

/// `/static/style.css`.
///
/// Colours were picked for a contrast of at least 4.5:1 against their background in both themes
/// (light: `#1b1b1b`/`#555`/`#0b57d0`/`#146c2e` on `#fff`; dark: `#e8e8e8`/`#b4b4b4`/`#8ab4f8`/
/// `#7bd88f` on `#151515`).
pub const STYLE_CSS: &str = r#"/* peersearch: one small stylesheet, no external assets */
:root {
  --bg: #ffffff;
  --fg: #1b1b1b;
  --muted: #555555;
  --link: #0b57d0;
  --visited: #6a1b9a;
  --url: #146c2e;
  --border: #d0d0d0;
  --panel: #f4f5f7;
  --notice-bg: #fff4d6;
  --notice-fg: #5c4400;
  --error-bg: #fde7e9;
  --error-fg: #8a1020;
  --focus: #0b57d0;
  --series-a: #0b57d0;
  --series-b: #b4470c;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #151515;
    --fg: #e8e8e8;
    --muted: #b4b4b4;
    --link: #8ab4f8;
    --visited: #d7aefb;
    --url: #7bd88f;
    --border: #3a3a3a;
    --panel: #1f1f1f;
    --notice-bg: #3a2f0b;
    --notice-fg: #ffe08a;
    --error-bg: #3d1216;
    --error-fg: #ffb3bc;
    --focus: #8ab4f8;
    --series-a: #8ab4f8;
    --series-b: #fdba74;
  }
}
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0;
  background: var(--bg);
  color: var(--fg);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
  font-size: 1rem;
  line-height: 1.5;
}
a { color: var(--link); }
a:visited { color: var(--visited); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip-link {
  position: absolute; left: 0.5rem; top: -3rem;
  background: var(--bg); color: var(--link); padding: 0.5rem 0.75rem;
  border: 2px solid var(--focus); z-index: 10;
}
.skip-link:focus { top: 0.5rem; }
.site-header, main, .site-footer {
  max-width: 46rem; margin: 0 auto; padding: 0 1rem;
}
.site-header {
  display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between;
  gap: 0.5rem; padding-top: 0.75rem; padding-bottom: 0.75rem;
  border-bottom: 1px solid var(--border);
}
.brand { font-weight: 700; font-size: 1.25rem; text-decoration: none; color: var(--fg); }
.brand:visited { color: var(--fg); }
.site-header nav ul { list-style: none; display: flex; gap: 1rem; margin: 0; padding: 0; }
main { padding-top: 1rem; padding-bottom: 2rem; }
.site-footer {
  border-top: 1px solid var(--border); color: var(--muted);
  font-size: 0.875rem; padding-top: 0.75rem; padding-bottom: 1.5rem;
}
h1 { font-size: 1.5rem; line-height: 1.25; }
h2 { font-size: 1.2rem; }
.home { text-align: center; padding-top: 12vh; }
.home h1 { font-size: 2.5rem; margin-bottom: 0.25rem; }
.tagline { color: var(--muted); margin-top: 0; }
.search-form { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; margin: 1rem 0; }
.search-form label { flex-basis: 100%; font-weight: 600; text-align: left; }
.visually-hidden {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px;
  overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0;
}
input[type="search"], textarea {
  flex: 1 1 16rem; min-width: 0; font: inherit; color: var(--fg); background: var(--bg);
  border: 1px solid var(--muted); border-radius: 0.375rem; padding: 0.5rem 0.75rem;
}
textarea { width: 100%; min-height: 7rem; }
button {
  font: inherit; cursor: pointer; color: #ffffff; background: #0b57d0;
  border: 1px solid #0b57d0; border-radius: 0.375rem; padding: 0.5rem 1rem;
}
button:hover { background: #0842a0; }
.summary, .meta { color: var(--muted); font-size: 0.875rem; }
.notice, .error {
  border-radius: 0.375rem; padding: 0.5rem 0.75rem; margin: 1rem 0;
}
.notice { background: var(--notice-bg); color: var(--notice-fg); }
.error { background: var(--error-bg); color: var(--error-fg); }
.results { list-style: none; padding: 0; margin: 0; }
.result { margin: 0 0 1.5rem; overflow-wrap: anywhere; }
.result h2 { font-size: 1.125rem; font-weight: 600; margin: 0; }
.result .url { color: var(--url); font-size: 0.875rem; margin: 0.125rem 0; }
.result .snippet { margin: 0.25rem 0; }
.result .snippet b { font-weight: 700; color: var(--fg); }
.result .meta { margin: 0; }
.cached { overflow-wrap: anywhere; }
.cached-text p { margin: 0 0 0.75rem; }
.pagination ul { list-style: none; display: flex; flex-wrap: wrap; gap: 0.5rem; padding: 0; }
.pagination a, .pagination span {
  display: inline-block; min-width: 2.25rem; text-align: center;
  padding: 0.25rem 0.5rem; border: 1px solid var(--border); border-radius: 0.375rem;
}
.pagination [aria-current="page"] { font-weight: 700; border-color: var(--fg); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 0.25rem 1rem; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
dl.facts dd ul { list-style: none; margin: 0; padding: 0; }
code { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.9em; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.375rem 0.5rem; border-bottom: 1px solid var(--border); vertical-align: top; }
td { overflow-wrap: anywhere; }
.why .formula { overflow-wrap: anywhere; }
th { font-weight: 600; }
.chart { width: 100%; height: auto; background: var(--panel); border-radius: 0.375rem; }
.chart .axis { stroke: var(--muted); }
.chart .grid { stroke: var(--border); }
.chart text { fill: var(--fg); font-size: 12px; font-family: inherit; }
.chart .series-a { stroke: var(--series-a); fill: none; }
.chart .series-b { stroke: var(--series-b); fill: none; }
.chart .swatch-a { fill: var(--series-a); }
.chart .swatch-b { fill: var(--series-b); }
.help dt { font-weight: 600; margin-top: 0.75rem; }
.help dd { margin-left: 1rem; }
"#;

/// `/favicon.svg`: a magnifying glass over three linked dots (peers).
pub const FAVICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><title>peersearch</title><rect width="32" height="32" rx="6" fill="#0b57d0"/><circle cx="13" cy="13" r="7.5" fill="none" stroke="#ffffff" stroke-width="3"/><line x1="18.5" y1="18.5" x2="27" y2="27" stroke="#ffffff" stroke-width="3.5" stroke-linecap="round"/><circle cx="10" cy="11" r="1.6" fill="#ffffff"/><circle cx="16" cy="11" r="1.6" fill="#ffffff"/><circle cx="13" cy="16" r="1.6" fill="#ffffff"/></svg>
"##;
