//! `settlementd probe`: a health check that needs no shell and no curl in the image.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest a probe waits for the whole answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// GETs `url` (plain `http://host:port/path`) and succeeds on status 200.
pub async fn check(url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .context("--url must start with http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let status = tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut stream = TcpStream::connect(authority).await?;
        let request =
            format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut head = vec![0_u8; 64];
        let n = stream.read(&mut head).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).into_owned())
    })
    .await
    .context("no answer within 3 s")?
    .with_context(|| format!("cannot reach {authority}"))?;
    let code = status.split_whitespace().nth(1).unwrap_or("");
    if code != "200" {
        bail!("{url} answered {code:?}");
    }
    Ok(())
}
