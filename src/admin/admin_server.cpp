#include "phigate/admin/admin_server.hpp"

#include <chrono>

#include "phigate/core/log.hpp"
#include "phigate/http/parser.hpp"
#include "phigate/http/serializer.hpp"

namespace phigate::admin {

AdminServer::AdminServer(net::tcp::acceptor acceptor, AdminHooks hooks)
    : acceptor_(std::move(acceptor)), hooks_(std::move(hooks)) {}

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
    net::asio::co_spawn(acceptor_.get_executor(), serve(std::move(sock), hooks_), net::asio::detached);
  }
}

net::awaitable<void> AdminServer::serve(net::tcp::socket sock, AdminHooks hooks) {
  // One request per connection, bounded in size and time: the admin port is for probes and
  // scrapes, not for clients to hold open.
  net::asio::steady_timer deadline(sock.get_executor(), std::chrono::seconds(5));
  deadline.async_wait([&sock](net::error_code ec) {
    if (!ec) sock.close(ec);
  });
  http::Parser parser(http::Parser::Kind::Request, {});
  char buf[4096];
  for (;;) {
    auto [ec, n] = co_await sock.async_read_some(net::asio::buffer(buf), net::use_awaitable_tuple);
    if (ec) {
      deadline.cancel();
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
  co_await net::asio::async_write(sock, net::asio::buffer(out), net::use_awaitable_tuple);
  deadline.cancel();
  net::error_code ec;
  sock.shutdown(net::tcp::socket::shutdown_both, ec);
  sock.close(ec);
}

}  // namespace phigate::admin
