//! For tests: a far server that never stops answering.

/// A server on loopback that answers every request with `head` and then a body that
/// never ends; returns its `http://` address.
pub async fn endless_server(head: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let endpoint = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 16];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(head.as_bytes()).await;
                while socket.write_all(&[b'y'; 65536]).await.is_ok() {}
            });
        }
    });
    endpoint
}
