//! The top-level `log` block -> [`LogSettings`]: level and format checked by name, every error
//! with its path (`log.level`).

use yaml_serde::Value;

use super::common::{parse_value, Errors};
use crate::config::raw;
use crate::config::snapshot::{LogFormat, LogSettings};

/// Compiles `log` (absent: info, text, access lines on).
pub(super) fn compile(v: Option<&Value>, errs: &mut Errors) -> LogSettings {
    let d = LogSettings::default();
    let Some(r) = v.and_then(|v| parse_value::<raw::Log>(v, "log", errs)) else { return d };
    let level = match r.level.as_deref().map(str::trim) {
        None => d.level,
        Some(l) => match l.to_ascii_lowercase().as_str() {
            "off" => log::LevelFilter::Off,
            "error" => log::LevelFilter::Error,
            "warn" | "warning" => log::LevelFilter::Warn,
            "info" => log::LevelFilter::Info,
            "debug" => log::LevelFilter::Debug,
            "trace" => log::LevelFilter::Trace,
            _ => {
                errs.push("log.level", "must be one of off, error, warn, info, debug, trace");
                d.level
            }
        },
    };
    let format = match r.format.as_deref().map(str::trim) {
        None => d.format,
        Some("json") => LogFormat::Json,
        Some("text") => LogFormat::Text,
        Some(_) => {
            errs.push("log.format", "must be json or text");
            d.format
        }
    };
    LogSettings { level, format, access: r.access.unwrap_or(d.access) }
}

/// Compiles `audit` (absent: no trail). The file is created on first use; its folder must exist.
/// The `tracing` block: the endpoint resolved (`https://`, or `http://` to loopback), headers,
/// sampling in [0, 1].
pub(super) fn compile_tracing(
    v: Option<&Value>,
    errs: &mut Errors,
) -> Option<std::sync::Arc<crate::config::snapshot::Tracing>> {
    let r = v.and_then(|v| parse_value::<raw::Tracing>(v, "tracing", errs))?;
    let sampling = r.sampling.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sampling) {
        errs.push("tracing.sampling", "must be between 0 and 1");
    }
    let tls = || {
        super::common::client_tls(r.otlp.ca_file.as_deref()).map_err(|e| format!("TLS configuration: {e}"))
    };
    let endpoint = match crate::upstream::target::Target::parse(&r.otlp.endpoint, tls) {
        Ok(t) if t.tls.is_none() && !t.addr.ip().is_loopback() => {
            errs.push(
                "tracing.otlp.endpoint",
                "must be https:// (plain http is accepted for loopback addresses only)",
            );
            return None;
        }
        Ok(t) => t,
        Err(e) => {
            errs.push("tracing.otlp.endpoint", e.to_string());
            return None;
        }
    };
    let mut headers = Vec::new();
    for (k, v) in r.otlp.headers.unwrap_or_default() {
        let token =
            !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || v.bytes().any(|b| b < 0x20 && b != b'\t') {
            errs.push(
                format!("tracing.otlp.headers.{k}"),
                "must be a header name with a value without control characters",
            );
            continue;
        }
        headers.push((k.to_ascii_lowercase(), v));
    }
    let service_name = r.service_name.filter(|s| !s.is_empty()).unwrap_or_else(|| "portcullis".into());
    Some(std::sync::Arc::new(crate::config::snapshot::Tracing { endpoint, headers, sampling, service_name }))
}

pub(super) fn compile_audit(v: Option<&Value>, errs: &mut Errors) -> Option<std::path::PathBuf> {
    let r = v.and_then(|v| parse_value::<raw::Audit>(v, "audit", errs))?;
    let path = std::path::PathBuf::from(&r.file);
    if r.file.trim().is_empty() {
        errs.push("audit.file", "must not be empty");
        return None;
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if !folder.is_dir() {
        errs.push("audit.file", format!("folder {:?} does not exist", folder.display().to_string()));
        return None;
    }
    Some(path)
}
