#include "redirect_connection.hpp"

namespace phigate::proxy::detail {

std::string https_location(std::string_view host, std::string_view target, std::uint16_t https_port) {
  // Drop the port the client used for plain HTTP; keep IPv6 brackets.
  std::string_view name = host;
  if (!name.empty() && name.front() == '[') {
    const auto close = name.find(']');
    if (close == std::string_view::npos) return {};
    name = name.substr(0, close + 1);
  } else if (const auto colon = name.rfind(':'); colon != std::string_view::npos) {
    name = name.substr(0, colon);
  }
  if (name.empty()) return {};
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '.' || c == '[' || c == ']' || c == ':';
    if (!ok) return {};
  }
  // Absolute-form targets carry their own scheme and host: keep only path and query.
  if (!target.empty() && target.front() != '/') {
    const auto scheme = target.find("://");
    if (scheme == std::string_view::npos) return {};
    const auto slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  std::string loc = "https://";
  loc += name;
  if (https_port != 443) {
    loc += ':';
    loc += std::to_string(https_port);
  }
  loc += target.empty() ? std::string_view("/") : target;
  return loc;
}

RedirectConnection::RedirectConnection(Worker& worker, SnapshotPtr snap, net::tcp::socket sock)
    : ConnectionCore(worker, std::move(snap)), stream_(std::move(sock)) {}

net::awaitable<void> RedirectConnection::run(std::shared_ptr<RedirectConnection> self) {
  while (co_await self->serve_one()) {
  }
  self->disarm();
  net::error_code ec;
  self->stream_.socket().close(ec);
}

void RedirectConnection::expire() {
  timed_out_ = true;
  cancel_socket(stream_.socket());
  disarm();
}

void RedirectConnection::drain() {
  close_after_response_ = true;
  if (idle) cancel_socket(stream_.socket());
}

net::awaitable<bool> RedirectConnection::serve_one() {
  timed_out_ = false;
  const auto r = co_await read_request_head(stream_);
  if (r == HeadResult::Closed) co_return false;
  if (r == HeadResult::Failed) co_return co_await reply_error(stream_, error_, true);
  const auto& head = req_parser_.head();
  const std::string* host = head.headers.find("host");
  const auto configured = worker_.snapshot()->https_redirect_port;
  const auto location = https_location(host ? std::string_view(*host) : std::string_view{}, head.target,
                                       configured != 0 ? configured : worker_.https_port());
  if (location.empty() || head.headers.count("host") != 1) {
    co_return co_await reply_error(
        stream_, core::Error::downstream(core::ErrorKind::BadRequest, "redirect needs one valid Host"), true);
  }
  // A request body we did not read would be parsed as the next request: close instead.
  const bool close =
      !req_parser_.message_complete() || !head.keep_alive || close_after_response_ || worker_.draining();
  out_.clear();
  http::append_local_reply(out_, 308, head.version_minor, close, "308 Permanent Redirect\n", location,
                           head.method == "HEAD");
  worker_.stats().count_response(308);
  worker_.stats().redirects.inc();
  if (co_await flush_client(stream_)) co_return false;
  co_return !close;
}

}  // namespace phigate::proxy::detail
