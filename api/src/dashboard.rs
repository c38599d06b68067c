//! The web dashboard: a small single-page app (`api/assets/`) embedded in the binary and served
//! at `/`, with its scripts and styles under `/assets/<version>/`. Nothing is fetched from
//! anywhere else: the Content-Security-Policy only allows this origin.
//!
//! `<version>` is a hash of every asset, so the files are cached for a year and a new build is
//! picked up at once; `index.html` itself is revalidated on every load (ETag). The scripts are ES
//! modules that import each other by relative paths (`./dom.js`, `../api.js`), so every import
//! resolves under the same versioned prefix and needs no rewriting.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use warp::reply::Response;

/// The policy of every dashboard response: this origin only, no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

struct Asset {
    /// The path under `/assets/<version>/`, as the modules import each other (`pages/fleet.js`).
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const INDEX: &str = include_str!("../assets/index.html");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

/// Every file of the dashboard. `app.js` is the entry module; the other modules are reached
/// through its relative imports, which resolve under the same `/assets/<version>/` prefix and so
/// are cache-busted with it.
const ASSETS: &[Asset] = &[
    asset!("app.js", JAVASCRIPT),
    asset!("api.js", JAVASCRIPT),
    asset!("live.js", JAVASCRIPT),
    asset!("router.js", JAVASCRIPT),
    asset!("dom.js", JAVASCRIPT),
    asset!("format.js", JAVASCRIPT),
    asset!("enums.js", JAVASCRIPT),
    asset!("chart.js", JAVASCRIPT),
    asset!("actions.js", JAVASCRIPT),
    asset!("pages/fleet.js", JAVASCRIPT),
    asset!("pages/alerts.js", JAVASCRIPT),
    asset!("pages/system.js", JAVASCRIPT),
    asset!("pages/system_deep.js", JAVASCRIPT),
    asset!("pages/capacity.js", JAVASCRIPT),
    asset!("pages/events.js", JAVASCRIPT),
    // A classic script, run before the first paint.
    asset!("theme.js", JAVASCRIPT),
    asset!("app.css", "text/css; charset=utf-8"),
];

/// The modules `app.js` imports, directly or not: preloaded from `index.html` so the browser
/// fetches them at once instead of one import level after the other.
fn module_preloads(version: &str) -> String {
    ASSETS
        .iter()
        .filter(|a| a.name.ends_with(".js") && a.name != "app.js" && a.name != "theme.js")
        .map(|a| {
            format!(
                "<link rel=\"modulepreload\" href=\"/assets/{version}/{}\">",
                a.name
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

struct Built {
    version: String,
    index: Vec<u8>,
    index_etag: String,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut hasher = std::hash::DefaultHasher::new();
        INDEX.hash(&mut hasher);
        for asset in ASSETS {
            asset.name.hash(&mut hasher);
            asset.body.hash(&mut hasher);
        }
        let version = format!("{:016x}", hasher.finish());
        let index = INDEX
            .replace("{{MODULE_PRELOADS}}", &module_preloads(&version))
            .replace("{{VERSION}}", &version)
            .into_bytes();
        let index_etag = format!("\"{version}\"");
        Built {
            version,
            index,
            index_etag,
        }
    })
}

/// The version segment of the asset URLs of this build.
pub fn version() -> &'static str {
    &built().version
}

/// `GET /` (and `/index.html`) and `GET /assets/<version>/<file>`; rejects (not found) every other
/// path so the filter can be placed in front of the API's own.
pub fn routes() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and_then(
            |method: Method, path: warp::path::FullPath, headers: HeaderMap| async move {
                if method != Method::GET && method != Method::HEAD {
                    return Err(warp::reject::not_found());
                }
                serve(path.as_str(), &headers).ok_or_else(warp::reject::not_found)
            },
        )
}

fn serve(path: &str, request: &HeaderMap) -> Option<Response> {
    let b = built();
    if path == "/" || path == "/index.html" {
        return Some(respond(
            request,
            "text/html; charset=utf-8",
            b.index.clone(),
            &b.index_etag,
            "no-cache",
        ));
    }
    let rest = path.strip_prefix("/assets/")?;
    let (version, name) = rest.split_once('/')?;
    let asset = ASSETS.iter().find(|a| a.name == name)?;
    // A page from an older build may ask for its own version: answer with the current file but
    // do not let it be cached under the old name for long.
    let cache = if version == b.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let etag = format!("\"{}-{}\"", b.version, asset.name);
    Some(respond(
        request,
        asset.content_type,
        asset.body.to_vec(),
        &etag,
        cache,
    ))
}

fn respond(
    request: &HeaderMap,
    content_type: &'static str,
    body: Vec<u8>,
    etag: &str,
    cache: &'static str,
) -> Response {
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if not_modified {
        let mut r = Response::new(Vec::new().into());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let mut r = Response::new(body.into());
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_every_asset_by_version() {
        let index = String::from_utf8(built().index.clone()).expect("utf-8");
        assert!(!index.contains("{{VERSION}}"));
        for name in ["app.js", "theme.js", "app.css"] {
            assert!(
                index.contains(&format!("/assets/{}/{name}", version())),
                "{name} not linked"
            );
        }
        let empty = HeaderMap::new();
        for asset in ASSETS {
            let resp =
                serve(&format!("/assets/{}/{}", version(), asset.name), &empty).expect("asset");
            assert_eq!(resp.status(), StatusCode::OK);
            assert!(
                resp.headers()[header::CACHE_CONTROL]
                    .to_str()
                    .is_ok_and(|v| v.contains("immutable"))
            );
        }
        assert!(serve("/assets/x/nope.js", &empty).is_none());
        assert!(serve("/api/v1/systems", &empty).is_none());
    }

    #[test]
    fn assets_load_nothing_from_elsewhere() {
        let all = std::iter::once(INDEX.as_bytes()).chain(ASSETS.iter().map(|a| a.body));
        for body in all {
            let text = String::from_utf8_lossy(body);
            for bad in [
                "http://",
                "https://",
                "//cdn",
                "<script>",
                " style=\"",
                "innerHTML",
                "eval(",
            ] {
                let hits: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains(bad) && !l.contains("http://www.w3.org/2000/svg"))
                    .collect();
                assert!(hits.is_empty(), "{bad:?} in an asset: {hits:?}");
            }
        }
    }

    /// The `from "..."` specifiers of one module, resolved against its own path.
    fn imports_of(asset: &Asset) -> Vec<String> {
        let text = String::from_utf8_lossy(asset.body);
        let dir: Vec<&str> = asset.name.split('/').rev().skip(1).collect();
        let mut found = Vec::new();
        for specifier in text
            .split(" from \"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
        {
            assert!(
                specifier.starts_with("./") || specifier.starts_with("../"),
                "{} imports {specifier:?}: only relative imports stay under the versioned prefix",
                asset.name
            );
            let mut path: Vec<&str> = dir.iter().rev().copied().collect();
            for part in specifier.split('/') {
                match part {
                    "." => {}
                    ".." => {
                        assert!(path.pop().is_some(), "{specifier:?} leaves /assets/");
                    }
                    name => path.push(name),
                }
            }
            found.push(path.join("/"));
        }
        found
    }

    #[test]
    fn every_module_is_served_and_reached_from_app_js() {
        let mut reached = vec!["app.js".to_owned()];
        let mut next = 0;
        while let Some(name) = reached.get(next).cloned() {
            next += 1;
            let asset = ASSETS
                .iter()
                .find(|a| a.name == name)
                .unwrap_or_else(|| panic!("{name} is imported but not served"));
            for import in imports_of(asset) {
                if !reached.contains(&import) {
                    reached.push(import);
                }
            }
        }
        let index = String::from_utf8(built().index.clone()).expect("utf-8");
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            if asset.name == "theme.js" {
                continue;
            }
            assert!(
                reached.iter().any(|r| r == asset.name),
                "{} is served but app.js never imports it",
                asset.name
            );
            if asset.name != "app.js" {
                let preload = format!(
                    "<link rel=\"modulepreload\" href=\"/assets/{}/{}\">",
                    version(),
                    asset.name
                );
                assert!(index.contains(&preload), "{} is not preloaded", asset.name);
            }
        }
        assert!(!index.contains("{{MODULE_PRELOADS}}"));
    }

    #[test]
    fn conditional_requests_get_304() {
        let b = built();
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&b.index_etag).expect("etag"),
        );
        let resp = serve("/", &h).expect("index");
        assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
        assert!(resp.headers().contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
