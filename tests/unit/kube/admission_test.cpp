// AdmissionReview v1: parsing the API server's request, and an answer that is valid JSON whatever
// bytes an Ingress author put into the messages.
#include "phigate/kube/admission.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace phigate::kube {
namespace {

std::string review(const std::string& request, const std::string& api_version = "admission.k8s.io/v1") {
  return R"({"apiVersion":")" + api_version + R"(","kind":"AdmissionReview","request":)" + request + "}";
}

const std::string kIngress =
    R"({"apiVersion":"networking.k8s.io/v1","kind":"Ingress","metadata":{"name":"web","namespace":"shop"},"spec":{"rules":[{"host":"a.example"}]}})";

std::string request(const std::string& extra = "") {
  return R"({"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"group":"networking.k8s.io","version":"v1","kind":"Ingress"},)"
         R"("resource":{"group":"networking.k8s.io","version":"v1","resource":"ingresses"},"namespace":"shop","name":"web",)"
         R"("operation":"CREATE","userInfo":{"username":"admin"},"object":)" +
         kIngress + R"(,"oldObject":null,"dryRun":false)" + extra + "}";
}

TEST(AdmissionParse, ValidReview_AllFields) {
  std::string error;
  const auto r = parse_admission_review(review(request()), error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_EQ(r->operation, "CREATE");
  EXPECT_EQ(r->kind, "Ingress");
  EXPECT_EQ(r->group, "networking.k8s.io");
  EXPECT_EQ(r->ns, "shop");
  EXPECT_EQ(r->name, "web");
  // The object comes back as JSON text that parses to the same thing.
  simdjson::dom::parser p;
  simdjson::dom::element obj;
  ASSERT_FALSE(p.parse(r->object).get(obj));
  std::string_view host;
  ASSERT_FALSE(obj["spec"]["rules"].at(0)["host"].get(host));
  EXPECT_EQ(host, "a.example");
  EXPECT_EQ(simdjson::to_string(obj), r->object);
}

TEST(AdmissionParse, Delete_NoObject) {
  std::string body =
      R"({"uid":"u1","kind":{"group":"networking.k8s.io","kind":"Ingress"},"operation":"DELETE",)"
      R"("namespace":"shop","name":"web","object":null,"oldObject":)" +
      kIngress + "}";
  std::string error;
  const auto r = parse_admission_review(review(body), error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->operation, "DELETE");
  EXPECT_TRUE(r->object.empty());
}

TEST(AdmissionParse, Refused) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not JSON"},
      {"{", "not JSON"},
      {"[]", "not a JSON object"},
      {"null", "not a JSON object"},
      {review(request(), "admission.k8s.io/v1beta1"), "not an AdmissionReview"},
      {R"({"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{}})", "not an AdmissionReview"},
      {R"({"kind":"AdmissionReview","request":{}})", "not an AdmissionReview"},
      {R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})", "request"},
      {review("[]"), "request"},
      {review(R"({"operation":"CREATE"})"), "request.uid"},
      {review(R"({"uid":"","operation":"CREATE"})"), "request.uid"},
      {review(R"({"uid":5,"operation":"CREATE"})"), "request.uid"},
      {review(R"({"uid":"u"})"), "request.operation"},
      {review(R"({"uid":"u","operation":"CREATE","kind":"Ingress"})"), "request.kind"},
      {review(R"({"uid":"u","operation":"CREATE","kind":{"kind":7}})"), "request.kind.kind"},
      {review(R"({"uid":"u","operation":"CREATE","object":"x"})"), "request.object"},
      {review(R"({"uid":"u","operation":"CREATE","object":[1]})"), "request.object"},
      {review(R"({"uid":"u","operation":"CREATE","namespace":{}})"), "request.namespace"},
      {review(request()) + "garbage", "not JSON"},
  };
  for (const auto& [body, needle] : cases) {
    std::string error;
    EXPECT_FALSE(parse_admission_review(body, error)) << body;
    EXPECT_NE(error.find(needle), std::string::npos) << body << " -> " << error;
  }
}

TEST(AdmissionParse, HugeAndOddStrings) {
  const std::string big(1 << 20, 'a');
  std::string error;
  auto r = parse_admission_review(review(R"({"uid":")" + big + R"(","operation":"CREATE"})"), error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->uid.size(), big.size());
  // Escapes are decoded; an embedded NUL survives as a byte.
  r = parse_admission_review(review(R"({"uid":"a\"b\\c\u0000d\u00e9","operation":"CREATE"})"), error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->uid, std::string("a\"b\\c\0d\xc3\xa9", 9));
  // Invalid UTF-8 in the input is not JSON (RFC 8259 §8.1).
  EXPECT_FALSE(parse_admission_review(review("{\"uid\":\"\xff\",\"operation\":\"CREATE\"}"), error));
  // Deep nesting in the object is bounded by the parser, not the stack.
  std::string deep(5000, '[');
  deep += std::string(5000, ']');
  EXPECT_FALSE(parse_admission_review(
      review(R"({"uid":"u","operation":"CREATE","object":{"a":)" + deep + "}}"), error));
}

/// Parses an answer with simdjson (the test's check that it is valid JSON) and returns its response.
simdjson::dom::element response_of(simdjson::dom::parser& p, const std::string& json) {
  simdjson::dom::element root;
  EXPECT_FALSE(p.parse(json).get(root)) << json;
  std::string_view s;
  EXPECT_FALSE(root["apiVersion"].get(s));
  EXPECT_EQ(s, "admission.k8s.io/v1");
  EXPECT_FALSE(root["kind"].get(s));
  EXPECT_EQ(s, "AdmissionReview");
  return root["response"].value_unsafe();
}

TEST(AdmissionResponse, Allowed) {
  simdjson::dom::parser p;
  const auto json = admission_response("u-1", true, {});
  const auto r = response_of(p, json);
  std::string_view uid;
  bool allowed = false;
  ASSERT_FALSE(r["uid"].get(uid));
  EXPECT_EQ(uid, "u-1");
  ASSERT_FALSE(r["allowed"].get(allowed));
  EXPECT_TRUE(allowed);
  EXPECT_EQ(r["status"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(r["warnings"].error(), simdjson::NO_SUCH_FIELD);
}

TEST(AdmissionResponse, DeniedWithMessagesAndWarnings) {
  simdjson::dom::parser p;
  const auto json = admission_response("u-2", false, {"first", "second"}, {"w1", "w2"});
  const auto r = response_of(p, json);
  bool allowed = true;
  ASSERT_FALSE(r["allowed"].get(allowed));
  EXPECT_FALSE(allowed);
  int64_t code = 0;
  ASSERT_FALSE(r["status"]["code"].get(code));
  EXPECT_EQ(code, 400);
  std::string_view msg;
  ASSERT_FALSE(r["status"]["message"].get(msg));
  EXPECT_EQ(msg, "first\nsecond");
  simdjson::dom::array warnings;
  ASSERT_FALSE(r["warnings"].get(warnings));
  ASSERT_EQ(warnings.size(), 2u);
  std::string_view w;
  ASSERT_FALSE(warnings.at(1).get(w));
  EXPECT_EQ(w, "w2");
}

TEST(AdmissionResponse, EveryByteEscapedToValidJson) {
  // Every byte value, quotes, backslashes, control characters and invalid UTF-8 (lone
  // continuation bytes, overlong forms, surrogates, truncated sequences, > U+10FFFF).
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  const std::vector<std::string> inputs = {
      all,
      "quote \" backslash \\ slash /",
      "\x80\xbf",
      "\xc0\xaf",                                   // overlong '/'
      "\xe0\x80\xaf",                               // overlong
      "\xed\xa0\x80",                               // UTF-16 surrogate
      "\xf4\x90\x80\x80",                           // above U+10FFFF
      "\xe2\x82",                                   // truncated
      "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",  // valid 2-, 3- and 4-byte sequences
  };
  for (const auto& in : inputs) {
    simdjson::dom::parser p;
    const auto json = admission_response(in, false, {in}, {in});
    const auto r = response_of(p, json);
    std::string_view uid, msg;
    ASSERT_FALSE(r["uid"].get(uid)) << json;
    ASSERT_FALSE(r["status"]["message"].get(msg)) << json;
    EXPECT_EQ(uid, msg);
    EXPECT_EQ(json.find('\n'), std::string::npos);  // control bytes never raw
  }
  // Valid text round-trips exactly; invalid bytes become U+FFFD one each.
  simdjson::dom::parser p;
  const std::string valid = "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \"\\\t\r\n\x01\x7f";
  std::string_view got;
  ASSERT_FALSE(response_of(p, admission_response(valid, true, {}))["uid"].get(got));
  EXPECT_EQ(got, valid);
  simdjson::dom::parser p2;
  ASSERT_FALSE(response_of(p2, admission_response("a\xff"
                                                  "b\xc0\xaf",
                                                  true, {}))["uid"]
                   .get(got));
  EXPECT_EQ(got,
            "a\xef\xbf\xbd"
            "b\xef\xbf\xbd\xef\xbf\xbd");
}

}  // namespace
}  // namespace phigate::kube
