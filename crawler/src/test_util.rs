//! Helpers shared by the crate's unit tests.

use axum::Router;

/// Serve `router` on a fresh port of 127.0.0.1; the base URL (`http://127.0.0.1:PORT`).
pub(crate) async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.ok();
    });
    format!("http://{addr}")
}
