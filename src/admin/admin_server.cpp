#include "phigate/admin/admin_server.hpp"

#include <chrono>
#include <cstdint>
#include <memory>

#include "phigate/core/log.hpp"
#include "phigate/http/parser.hpp"
#include "phigate/http/serializer.hpp"

namespace phigate::admin {

namespace {

/// One admin connection, owned by its coroutine. The deadline's handler holds only a weak_ptr
/// and the generation it was armed with (ARCHITECTURE.md, Rules): a deadline that expires while the
/// response is being written can have its handler queued after the coroutine finished and freed
/// the socket, so the handler must find nothing to close rather than close freed memory (or a
/// socket object reused by the next connection).
struct AdminConnection {
  explicit AdminConnection(net::tcp::socket s) : sock(std::move(s)), deadline(sock.get_executor()) {}
  net::tcp::socket sock;
  net::asio::steady_timer deadline;
  std::uint64_t deadline_gen = 0;

  static void arm(const std::shared_ptr<AdminConnection>& self, std::chrono::milliseconds timeout) {
    self->deadline.expires_after(timeout);
    self->deadline.async_wait(
        [w = std::weak_ptr<AdminConnection>(self), gen = ++self->deadline_gen](net::error_code ec) {
          const auto conn = w.lock();
          if (ec || !conn || gen != conn->deadline_gen) return;
          net::error_code ignored;
          conn->sock.close(ignored);
        });
  }
  void disarm() {
    ++deadline_gen;  // a handler already queued with success is now stale
    deadline.cancel();
  }
};

}  // namespace

AdminServer::AdminServer(net::tcp::acceptor acceptor, AdminHooks hooks,
                         std::chrono::milliseconds request_timeout)
    : acceptor_(std::move(acceptor)), hooks_(std::move(hooks)), request_timeout_(request_timeout) {}

void AdminServer::start() {
  net::asio::co_spawn(acceptor_.get_executor(), accept_loop(), net::asio::detached);
}

void AdminServer::stop() {
  net::error_code ec;
  acceptor_.close(ec);
}

net::awaitable<void> AdminServer::accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor_.async_accept(net::use_awaitable_tuple);
    if (ec == net::asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) continue;
    net::asio::co_spawn(acceptor_.get_executor(), serve(std::move(sock), hooks_, request_timeout_),
                        net::asio::detached);
  }
}

net::awaitable<void> AdminServer::serve(net::tcp::socket sock, AdminHooks hooks,
                                        std::chrono::milliseconds timeout) {
  // One request per connection, bounded in size and time: the admin port is for probes and
  // scrapes, not for clients to hold open.
  const auto conn = std::make_shared<AdminConnection>(std::move(sock));
  AdminConnection::arm(conn, timeout);
  http::Parser parser(http::Parser::Kind::Request, {});
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await conn->sock.async_read_some(net::asio::buffer(buf), net::use_awaitable_tuple);
    if (ec) {
      conn->disarm();
      co_return;
    }
    std::size_t used = 0;
    const auto st = parser.feed(buf, n, used);
    if (st == http::ParseStatus::Error || parser.head_complete()) break;
  }
  std::string out;
  const auto& head = parser.head();
  const std::string_view path = std::string_view(head.target).substr(0, head.target.find('?'));
  if (!parser.head_complete()) {
    http::append_local_reply(out, 400, 1, true, "bad request\n");
  } else if (head.method != "GET" && head.method != "HEAD") {
    http::append_local_reply(out, 405, 1, true, "method not allowed\n");
  } else if (path == "/healthz") {
    http::append_local_reply(out, 200, 1, true, "ok\n");
  } else if (path == "/readyz") {
    const bool ready = hooks.ready && hooks.ready();
    http::append_local_reply(out, ready ? 200 : 503, 1, true, ready ? "ready\n" : "not ready\n");
  } else if (path == "/metrics") {
    const std::string body = hooks.metrics ? hooks.metrics() : std::string();
    out =
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: "
        "close\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
  } else {
    http::append_local_reply(out, 404, 1, true, "not found\n");
  }
  co_await net::asio::async_write(conn->sock, net::asio::buffer(out), net::use_awaitable_tuple);
  conn->disarm();
  net::error_code ec;
  conn->sock.shutdown(net::tcp::socket::shutdown_both, ec);
  conn->sock.close(ec);
}

}  // namespace phigate::admin
