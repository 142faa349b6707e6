#include "error_page.hpp"

#include <algorithm>
#include <array>

#include "phigate/http/serializer.hpp"

namespace phigate::proxy::detail {
namespace {

constexpr std::array<std::string_view, 8> kFields = {"X-Code",         "X-Format",       "X-Original-URI",
                                                     "X-Namespace",    "X-Ingress-Name", "X-Service-Name",
                                                     "X-Service-Port", "X-Request-ID"};

void add_fields(http::HeaderList& h, const ErrorPageFields& f) {
  h.add("X-Code", std::to_string(f.code));
  if (!f.format.empty()) h.add("X-Format", f.format);
  if (!f.original_uri.empty()) h.add("X-Original-URI", f.original_uri);
  if (!f.ns.empty()) h.add("X-Namespace", f.ns);
  if (!f.ingress.empty()) h.add("X-Ingress-Name", f.ingress);
  if (!f.service.empty()) h.add("X-Service-Name", f.service);
  if (!f.service_port.empty()) h.add("X-Service-Port", f.service_port);
  if (!f.request_id.empty()) h.add("X-Request-ID", f.request_id);
}

}  // namespace

bool replaces_status(const config::RoutePolicy* p, int status, bool own) noexcept {
  if (p == nullptr || p->default_backend.empty() || p->custom_http_errors.empty()) return false;
  if (p->backend_protocol == config::BackendProtocol::Grpc ||
      p->backend_protocol == config::BackendProtocol::Grpcs)
    return false;
  if (!own && !p->intercept_errors) return false;
  if (status < 400 || status > 599) return false;
  return std::binary_search(p->custom_http_errors.begin(), p->custom_http_errors.end(),
                            static_cast<std::uint16_t>(status));
}

void set_error_page_fields(http::HeaderList& headers, const ErrorPageFields& f) {
  // Ours copied first: `f` may view into `headers` (X-Format is the client's Accept), which the
  // removal below moves.
  http::HeaderList ours;
  add_fields(ours, f);
  headers.remove_if([](const http::Header& h) {
    return std::any_of(kFields.begin(), kFields.end(),
                       [&](std::string_view n) { return http::iequals(h.name, n); });
  });
  for (const auto& h : ours) headers.add(h.name, h.value);
}

ErrorPageFields error_page_fields(const Request& r, int code, std::string_view original_uri,
                                  std::string_view request_id) {
  ErrorPageFields e;
  e.code = code;
  if (const auto* accept = r.head.headers.find("accept")) e.format = *accept;
  e.original_uri = original_uri;
  if (r.policy != nullptr && r.policy->resource.rfind("Ingress ", 0) == 0) {
    const std::string_view key = std::string_view(r.policy->resource).substr(8);
    const auto slash = key.find('/');
    if (slash != std::string_view::npos) {
      e.ns = key.substr(0, slash);
      e.ingress = key.substr(slash + 1);
    }
  }
  if (r.route != nullptr) {
    e.service = r.route->service_name;
    e.service_port = r.route->service_port;
  }
  e.request_id = request_id;
  return e;
}

void append_error_page_head(std::string& out, std::string_view method, std::string_view host,
                            std::string_view forwarded_for, const ErrorPageFields& f) {
  http::HeaderList h;
  if (!host.empty()) h.add("Host", host);
  add_fields(h, f);
  if (!forwarded_for.empty()) h.add("X-Forwarded-For", forwarded_for);
  // ingress-nginx rewrites the error request to "/": the page is chosen by X-Code, not the path.
  http::append_request_head(out, method == "HEAD" ? std::string_view("HEAD") : std::string_view("GET"), "/",
                            h, http::Framing{});
}

}  // namespace phigate::proxy::detail
