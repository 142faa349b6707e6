// Audit rendering of a request: decision, rule and event.outcome come from the outcome table.
#include "audit_events.hpp"

#include <gtest/gtest.h>

#include <string>

namespace phigate::proxy::detail {
namespace {

using core::Outcome;

std::string render(const RequestFacts& r) {
  audit::JsonLine j;
  ConnectionFacts c;
  c.source_ip = "198.51.100.7";
  c.source_port = 40000;
  c.worker = 1;
  c.connection = 2;
  http::MessageHead head;
  head.method = "GET";
  return std::string(render_request(j, c, r, &head, config::AuditSpec{}));
}

bool has(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}

TEST(AuditRequest, DecisionRuleAndOutcomeFromTheTable) {
  RequestFacts r;
  r.target = "/x";
  r.outcome = Outcome::Proxied;
  r.status = 500;  // the upstream's status: still allowed, and a success of ours
  auto line = render(r);
  EXPECT_TRUE(has(line, R"("outcome":"success")")) << line;
  EXPECT_TRUE(has(line, R"("decision":"allowed","rule":"route")")) << line;
  EXPECT_FALSE(has(line, R"("reason")")) << line;

  r.outcome = Outcome::Redirected;
  r.status = 308;
  line = render(r);
  EXPECT_TRUE(has(line, R"("outcome":"success")")) << line;
  EXPECT_TRUE(has(line, R"("decision":"redirected","rule":"ssl-redirect")")) << line;

  r.outcome = Outcome::AccessSourceRange;
  r.status = 403;
  r.reason = "denied";
  line = render(r);
  EXPECT_TRUE(has(line, R"("outcome":"failure","reason":"denied")")) << line;
  EXPECT_TRUE(has(line, R"("decision":"denied","rule":"source-range annotation")")) << line;

  r.outcome = Outcome::UpstreamConnectRefused;
  r.status = 502;
  r.reason = "connect_refused";
  line = render(r);
  EXPECT_TRUE(has(line, R"("outcome":"failure","reason":"connect_refused")")) << line;
  EXPECT_TRUE(has(line, R"("decision":"allowed","rule":"route")")) << line;

  r.outcome = Outcome::HostHeader;
  r.status = 400;
  r.reason = "bad_request";
  line = render(r);
  EXPECT_TRUE(has(line, R"("decision":"error","rule":"host-header")")) << line;
}

// rewrite-target: the record keeps the client's target and says it was rewritten.
TEST(AuditRequest, RewrittenKeepsTheClientsTarget) {
  RequestFacts r;
  r.target = "/something/new?q=1";
  r.outcome = Outcome::Proxied;
  r.status = 200;
  EXPECT_FALSE(has(render(r), R"("rewritten")"));
  r.rewritten = true;
  const auto line = render(r);
  EXPECT_TRUE(has(line, R"("rewritten":true)")) << line;
  EXPECT_TRUE(has(line, R"(/something/new)")) << line;
}

TEST(AuditRequest, NothingDecidedIsAnInternalError) {
  RequestFacts r;
  r.status = 200;  // a status alone decides nothing
  const auto line = render(r);
  EXPECT_TRUE(has(line, R"("outcome":"failure")")) << line;
  EXPECT_TRUE(has(line, R"("decision":"error","rule":"internal")")) << line;
}

TEST(AuditRequest, FieldOrderUnchanged) {
  RequestFacts r;
  r.outcome = Outcome::Proxied;
  r.status = 200;
  r.target = "/p";
  r.host = "app.example";
  r.request_id = "00000000000000000000000000000001";
  r.route = "app.example /";
  const auto line = render(r);
  EXPECT_TRUE(
      has(line, R"("event":{"kind":"event","action":"http-request","outcome":"success","duration":0},)"))
      << line;
  EXPECT_TRUE(has(line, R"("phigate":{"request_id":"00000000000000000000000000000001","decision":"allowed",)"
                        R"("rule":"route","route":"app.example /","worker":1,"connection":2})"))
      << line;
}

TEST(AuditRequest, CanaryFieldsOnlyWhenTheCanaryServed) {
  RequestFacts r;
  r.target = "/x";
  r.outcome = Outcome::Proxied;
  r.status = 200;
  r.route = "app.example /";
  r.ingress = "shop/web";
  auto line = render(r);
  EXPECT_FALSE(has(line, "canary")) << line;
  r.canary = "shop/web-canary";
  line = render(r);
  EXPECT_TRUE(has(line, R"("ingress":"shop/web","canary":true,"canary_ingress":"shop/web-canary")")) << line;
}

TEST(AuditRequest, FailedAttemptsListedInOrder) {
  RequestFacts r;
  r.outcome = core::Outcome::Proxied;
  r.upstream = "10.0.0.3:80";
  r.upstream_attempts = 3;
  const FailedAttempt failed[] = {{"10.0.0.1:80", "upstream_connect_refused", 0},
                                  {"10.0.0.2:80", "http_status", 503}};
  r.failed_attempts = failed;
  const auto line = render(r);
  EXPECT_NE(
      line.find(
          R"("attempts":3,"failed_attempts":[{"address":"10.0.0.1:80","reason":"upstream_connect_refused"},)"
          R"({"address":"10.0.0.2:80","reason":"http_status","status_code":503}])"),
      std::string::npos)
      << line;
  r.failed_attempts = {};
  EXPECT_EQ(render(r).find("failed_attempts"), std::string::npos);
}

TEST(AuditTunnel, StartRecordAndEndFields) {
  audit::JsonLine j;
  ConnectionFacts c;
  c.source_ip = "198.51.100.7";
  c.worker = 1;
  c.connection = 2;
  const std::string start(render_tunnel_start(j, c, std::chrono::system_clock::time_point{}, "abc123",
                                              "websocket", "app.example /", "127.0.0.1:9000"));
  EXPECT_TRUE(has(start, R"("action":"tunnel-start","outcome":"success")")) << start;
  EXPECT_TRUE(has(start, R"("request_id":"abc123","decision":"allowed","route":"app.example /")")) << start;
  EXPECT_TRUE(has(start, R"("upstream":{"address":"127.0.0.1:9000"})")) << start;
  EXPECT_TRUE(has(start, R"("tunnel":{"protocol":"websocket"})")) << start;

  RequestFacts r;
  r.target = "/ws";
  r.outcome = Outcome::Proxied;
  r.status = 101;
  EXPECT_FALSE(has(render(r), R"("tunnel")"));  // no tunnel: nothing rendered
  r.tunnel_protocol = "websocket";
  r.tunnel_to_upstream = 8;
  r.tunnel_to_client = 1048580;
  r.tunnel_duration = std::chrono::seconds(2);
  r.tunnel_closed_by = "idle";
  const auto end = render(r);
  EXPECT_TRUE(has(end, R"("tunnel":{"protocol":"websocket","bytes_to_upstream":8,"bytes_to_client":1048580,)"
                       R"("duration":2000000000,"closed_by":"idle"})"))
      << end;
}

}  // namespace
}  // namespace phigate::proxy::detail
