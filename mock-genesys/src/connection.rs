//! Keeps each connection's socket so that a `connection: reset` fault can abort it with a TCP RST.

use std::any::Any;

use actix_web::HttpRequest;
use actix_web::dev::Extensions;

/// The connection's socket, kept so a `connection: reset` fault can abort it.
#[cfg(unix)]
struct ConnectionSocket(std::os::fd::OwnedFd);

/// Stores a duplicate of each new connection's socket in its extensions (`HttpServer::on_connect`).
pub(crate) fn remember_socket(connection: &dyn Any, extensions: &mut Extensions) {
    #[cfg(unix)]
    if let Some(stream) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
        use std::os::fd::AsFd;
        match stream.as_fd().try_clone_to_owned() {
            Ok(fd) => {
                extensions.insert(ConnectionSocket(fd));
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot keep the connection's socket; reset faults will not apply");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (connection, extensions);
}

/// Drops the request's TCP connection so that the peer sees a reset and no HTTP answer.
pub(crate) fn abort_connection(req: &HttpRequest) {
    #[cfg(unix)]
    if let Some(socket) = req.conn_data::<ConnectionSocket>() {
        let socket = socket2::SockRef::from(&socket.0);
        // Linger 0 makes the final close send RST instead of a graceful FIN handshake.
        let _ = socket.set_linger(Some(std::time::Duration::ZERO));
        let _ = socket.shutdown(std::net::Shutdown::Both);
    }
    #[cfg(not(unix))]
    let _ = req;
}
