// The response editor: fields set by a route or a request replace the backend's fields of those
// names, Vary is merged, and nothing unsafe is ever written.
#include "phigate/http/response_edits.hpp"

#include <gtest/gtest.h>

namespace phigate::http {
namespace {

std::string dump(const HeaderList& h) {
  std::string s;
  for (const auto& f : h) s += f.name + ": " + f.value + "\n";
  return s;
}

TEST(ResponseEdits, RequestFieldsReplaceTheBackends) {
  HeaderList h;
  h.add("Content-Type", "text/html");
  h.add("access-control-allow-origin", "https://evil.example");
  h.add("Access-Control-Allow-Origin", "*");
  h.add("Access-Control-Allow-Credentials", "true");
  EXPECT_EQ(apply_response_edits(h, nullptr,
                                 "Access-Control-Allow-Origin: https://app.example\r\n"
                                 "Access-Control-Max-Age: 5\r\n"),
            0u);
  EXPECT_EQ(h.count("access-control-allow-origin"), 1u);
  EXPECT_EQ(*h.find("access-control-allow-origin"), "https://app.example");
  EXPECT_EQ(*h.find("access-control-max-age"), "5");
  // Fields we do not set are the backend's.
  EXPECT_EQ(*h.find("access-control-allow-credentials"), "true");
  EXPECT_EQ(*h.find("content-type"), "text/html");
}

// enable-cors: the backend's Access-Control-* fields are removed, any case, before ours go in;
// a field that only starts like one (Access-Controls, X-Access-Control-...) stays.
TEST(ResponseEdits, AccessControlFieldsAreDroppedWhenAsked) {
  HeaderList h;
  h.add("Content-Type", "text/html");
  h.add("ACCESS-CONTROL-ALLOW-CREDENTIALS", "true");
  h.add("Access-Control-Allow-Origin", "https://evil.example");
  h.add("access-control-expose-headers", "X-Secret");
  h.add("Access-Controls", "kept");
  h.add("X-Access-Control-Allow-Origin", "kept");
  ResponseEdits e;
  e.drop_access_control = true;
  EXPECT_TRUE(e.any());
  EXPECT_EQ(apply_response_edits(h, &e, "Access-Control-Allow-Origin: https://app.example\r\n"), 0u);
  EXPECT_EQ(dump(h),
            "Content-Type: text/html\nAccess-Controls: kept\nX-Access-Control-Allow-Origin: kept\n"
            "Access-Control-Allow-Origin: https://app.example\n");
  HeaderList none;
  none.add("Access-Control-Allow-Origin", "*");
  apply_response_edits(none, &e, {});
  EXPECT_EQ(none.size(), 0u);
}

TEST(ResponseEdits, VaryIsMerged) {
  HeaderList h;
  h.add("Vary", "Accept-Encoding");
  apply_response_edits(h, nullptr, "Vary: Origin\r\n");
  EXPECT_EQ(dump(h), "Vary: Accept-Encoding\nVary: Origin\n");
  HeaderList has;
  has.add("vary", "accept-encoding, ORIGIN");
  apply_response_edits(has, nullptr, "Vary: Origin\r\n");
  EXPECT_EQ(dump(has), "vary: accept-encoding, ORIGIN\n");
  HeaderList star;
  star.add("Vary", "*");
  apply_response_edits(star, nullptr, "Vary: Origin\r\n");
  EXPECT_EQ(dump(star), "Vary: *\n");
  HeaderList none;
  apply_response_edits(none, nullptr, "Vary: Origin\r\n");
  EXPECT_EQ(dump(none), "Vary: Origin\n");
}

TEST(ResponseEdits, RouteEditsReplaceToo) {
  HeaderList h;
  h.add("X-Frame-Options", "ALLOW");
  ResponseEdits e;
  e.set.push_back({"X-Frame-Options", "DENY"});
  e.set.push_back({"X-New", "1"});
  EXPECT_EQ(apply_response_edits(h, &e, {}), 0u);
  EXPECT_EQ(dump(h), "X-Frame-Options: DENY\nX-New: 1\n");
}

TEST(ResponseEdits, RouteFieldLinesReplaceTheBackendsAfterTheRequests) {
  // custom-headers (the route's "Name: value" lines) replace every backend field of a name, and
  // come after the request's fields.
  HeaderList h;
  h.add("x-frame-options", "ALLOW");
  h.add("X-Frame-Options", "SAMEORIGIN");
  h.add("Content-Type", "text/plain");
  ResponseEdits e;
  EXPECT_FALSE(e.any());
  e.set_fields = "X-Frame-Options: DENY\r\nX-Team: web\r\n";
  EXPECT_TRUE(e.any());
  EXPECT_FALSE(e.rewrites());
  EXPECT_EQ(apply_response_edits(h, &e, "X-Team: request\r\n"), 0u);
  EXPECT_EQ(dump(h), "x-frame-options: DENY\nContent-Type: text/plain\nX-Team: web\n");
}

TEST(ResponseEdits, UnsafeLinesAreSkippedNeverSent) {
  HeaderList h;
  h.add("A", "backend");
  ResponseEdits e;
  e.set.push_back({"A", std::string("x\0y", 3)});
  e.set.push_back({"B", "x\ry"});
  e.set.push_back({"C", "x\ny"});
  e.set.push_back({"Bad Name", "1"});
  e.set.push_back({"", "1"});
  e.set.push_back({"D:", "1"});
  e.set.push_back({"E", std::string(kMaxEditedValue + 1, 'a')});
  e.set.push_back({"F", " leading"});
  e.set.push_back({"G", "\x7f"});
  e.set.push_back({"H", "\xc3\xa9"});
  EXPECT_EQ(apply_response_edits(h, &e, "NoColon\r\nX Y: 1\r\n"), 12u);
  EXPECT_EQ(dump(h), "A: backend\n");  // left as the backend sent it
  EXPECT_TRUE(safe_field_value(std::string(kMaxEditedValue, 'a')));
  EXPECT_TRUE(safe_field_value("a\tb c"));
  EXPECT_TRUE(safe_field_value(""));
}

}  // namespace
}  // namespace phigate::http

namespace phigate::http {
namespace {

ResponseEdits rewrites() {
  ResponseEdits e;
  e.redirect_from = "http://backend:8080/";
  e.redirect_to = "https://app.example/";
  e.cookie_domain_from = "backend.local";
  e.cookie_domain_to = "app.example";
  e.cookie_path_from = "/internal";
  e.cookie_path_to = "/app";
  return e;
}

TEST(ResponseEditsRewrite, LocationPrefixIsReplacedCaseSensitively) {
  const auto e = rewrites();
  HeaderList h;
  h.add("Location", "http://backend:8080/login?next=/a");
  apply_response_edits(h, &e, {});
  EXPECT_EQ(*h.find("location"), "https://app.example/login?next=/a");
  HeaderList other;
  other.add("Location", "HTTP://BACKEND:8080/login");               // case-sensitive, as nginx
  other.add("Location", "https://elsewhere/http://backend:8080/");  // a prefix only
  apply_response_edits(other, &e, {});
  EXPECT_EQ(dump(other),
            "Location: HTTP://BACKEND:8080/login\nLocation: https://elsewhere/http://backend:8080/\n");
}

TEST(ResponseEditsRewrite, RefreshAfterUrl) {
  const auto e = rewrites();
  HeaderList h;
  h.add("Refresh", "5; URL=http://backend:8080/x");
  apply_response_edits(h, &e, {});
  EXPECT_EQ(*h.find("refresh"), "5; URL=https://app.example/x");
}

TEST(ResponseEditsRewrite, CookieDomainAndPath) {
  const auto e = rewrites();
  HeaderList h;
  h.add("Set-Cookie", "a=1; Domain=.Backend.Local; Path=/internal/x;  Secure");
  h.add("Set-Cookie", "b=2;domain=backend.local;path=/internalize");
  h.add("Set-Cookie",
        "c=Domain=backend.local; Domain=sub.backend.local; Path=/other");  // not equal; no prefix
  h.add("Set-Cookie", "d=3; Max-Age=5");
  apply_response_edits(h, &e, {});
  EXPECT_EQ(dump(h),
            "Set-Cookie: a=1; Domain=.app.example; Path=/app/x;  Secure\n"
            "Set-Cookie: b=2;domain=app.example;path=/appize\n"
            "Set-Cookie: c=Domain=backend.local; Domain=sub.backend.local; Path=/other\n"
            "Set-Cookie: d=3; Max-Age=5\n");
}

TEST(ResponseEditsRewrite, UnsafeOrOverlongResultsLeaveTheFieldAsSent) {
  ResponseEdits e;
  e.redirect_from = "/";
  const std::string big(kMaxEditedValue, 'a');
  e.redirect_to = big;
  HeaderList h;
  h.add("Location", "/x");
  EXPECT_EQ(apply_response_edits(h, &e, {}), 1u);
  EXPECT_EQ(*h.find("location"), "/x");
}

}  // namespace
}  // namespace phigate::http
