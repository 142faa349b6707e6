// custom-http-errors / default-backend, sans-I/O (src/proxy/error_page.hpp): which statuses are
// replaced, the error-page request head, and what a client cannot forge.
#include "error_page.hpp"

#include <gtest/gtest.h>

namespace phigate::proxy::detail {
namespace {

config::RoutePolicy errors(std::vector<std::uint16_t> codes) {
  config::RoutePolicy p;
  p.custom_http_errors = std::move(codes);
  p.default_backend = "errors";
  return p;
}

ErrorPageFields fields(int code) {
  ErrorPageFields f;
  f.code = code;
  f.format = "text/html";
  f.original_uri = "/a?b=1";
  f.ns = "shop";
  f.ingress = "web";
  f.service = "svc-main";
  f.service_port = "80";
  f.request_id = "abc123";
  return f;
}

TEST(ErrorPage, ReplacesOnlyListedStatuses) {
  const auto p = errors({404, 500, 503});
  EXPECT_TRUE(intercepts(&p, 404));
  EXPECT_TRUE(intercepts(&p, 503));
  EXPECT_FALSE(intercepts(&p, 502));
  EXPECT_FALSE(intercepts(&p, 200));
  EXPECT_FALSE(intercepts(nullptr, 404));
  EXPECT_TRUE(replaces_status(&p, 503, true));
  EXPECT_FALSE(replaces_status(&p, 504, true));
}

TEST(ErrorPage, NeedsAnErrorBackendAndNeverGrpc) {
  auto p = errors({500});
  p.default_backend.clear();
  EXPECT_FALSE(intercepts(&p, 500));
  EXPECT_FALSE(replaces_status(&p, 500, true));
  for (const auto proto : {config::BackendProtocol::Grpc, config::BackendProtocol::Grpcs}) {
    auto g = errors({500});
    g.backend_protocol = proto;
    EXPECT_FALSE(intercepts(&g, 500));
    EXPECT_FALSE(replaces_status(&g, 500, true));
  }
}

TEST(ErrorPage, DisableInterceptKeepsPagesForOwnErrorsOnly) {
  auto p = errors({502, 503});
  p.intercept_errors = false;
  EXPECT_FALSE(intercepts(&p, 503));            // the backend's own 503 passes
  EXPECT_TRUE(replaces_status(&p, 503, true));  // phigate's (no endpoint) gets the page
  EXPECT_TRUE(replaces_status(&p, 502, true));
}

TEST(ErrorPage, HeadIsGetSlashWithTheFields) {
  std::string out;
  append_error_page_head(out, "POST", "app.example", "203.0.113.7", fields(503));
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\nHost: app.example\r\nX-Code: 503\r\nX-Format: text/html\r\n"
            "X-Original-URI: /a?b=1\r\nX-Namespace: shop\r\nX-Ingress-Name: web\r\n"
            "X-Service-Name: svc-main\r\nX-Service-Port: 80\r\nX-Request-ID: abc123\r\n"
            "X-Forwarded-For: 203.0.113.7\r\n\r\n");
  // No body framing whatever the client sent: the page request has none.
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
  EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos);
}

TEST(ErrorPage, HeadStaysHead) {
  std::string out;
  append_error_page_head(out, "HEAD", "app.example", "", fields(404));
  EXPECT_EQ(out.rfind("HEAD / HTTP/1.1\r\n", 0), 0u);
  EXPECT_EQ(out.find("X-Forwarded-For"), std::string::npos);
}

TEST(ErrorPage, AbsentAcceptSendsNoFormat) {
  auto f = fields(404);
  f.format = {};
  std::string out;
  append_error_page_head(out, "GET", "app.example", "", f);
  EXPECT_EQ(out.find("X-Format"), std::string::npos);
}

// A client cannot choose X-Code or any of the fields the error backend trusts: what it sent under
// those names (in any case, several times) is replaced by phigate's values.
TEST(ErrorPage, ClientCannotForgeTheFields) {
  http::HeaderList h;
  h.add("Host", "app.example");
  h.add("x-code", "200");
  h.add("X-CODE", "418");
  h.add("X-Namespace", "kube-system");
  h.add("X-Service-Name", "secrets");
  h.add("x-request-id", "forged");
  h.add("X-Original-URI", "/admin");
  h.add("Accept", "text/html");
  set_error_page_fields(h, fields(503));
  EXPECT_EQ(h.count("x-code"), 1u);
  EXPECT_EQ(*h.find("x-code"), "503");
  EXPECT_EQ(*h.find("x-namespace"), "shop");
  EXPECT_EQ(*h.find("x-service-name"), "svc-main");
  EXPECT_EQ(h.count("x-request-id"), 1u);
  EXPECT_EQ(*h.find("x-request-id"), "abc123");
  EXPECT_EQ(*h.find("x-original-uri"), "/a?b=1");
  EXPECT_EQ(*h.find("accept"), "text/html");  // other fields stay
}

// X-Format views into the client's Accept, in the very list the forged fields are removed from.
TEST(ErrorPage, FieldsMayViewIntoTheHeadersTheyReplace) {
  http::HeaderList h;
  h.add("X-Code", "200");
  h.add("X-Format", "forged");
  const std::string accept = "application/json, text/html;q=0.9, " + std::string(64, 'x');
  h.add("Accept", accept);
  auto f = fields(503);
  f.format = *h.find("accept");
  set_error_page_fields(h, f);
  EXPECT_EQ(*h.find("x-format"), accept);
  EXPECT_EQ(h.count("x-format"), 1u);
  EXPECT_EQ(*h.find("accept"), accept);
}

TEST(ErrorPage, FieldsFromTheRequestsIngressRouteAndAccept) {
  http::MessageHead head;
  head.method = "GET";
  head.headers.add("Accept", "text/html");
  Request r(head);
  config::RoutePolicy p;
  p.resource = "Ingress shop/web";
  router::Route route;
  route.service_name = "svc-main";
  route.service_port = "http";
  r.policy = &p;
  r.route = &route;
  const auto f = error_page_fields(r, 404, "/a", "rid");
  EXPECT_EQ(f.code, 404);
  EXPECT_EQ(f.format, "text/html");
  EXPECT_EQ(f.original_uri, "/a");
  EXPECT_EQ(f.ns, "shop");
  EXPECT_EQ(f.ingress, "web");
  EXPECT_EQ(f.service, "svc-main");
  EXPECT_EQ(f.service_port, "http");
  EXPECT_EQ(f.request_id, "rid");
  // A static route (no Ingress): no namespace or name.
  p.resource.clear();
  const auto s = error_page_fields(r, 404, "/a", "rid");
  EXPECT_TRUE(s.ns.empty());
  EXPECT_TRUE(s.ingress.empty());
}

}  // namespace
}  // namespace phigate::proxy::detail
