#include "phigate/audit/key_ring.hpp"

#include <gtest/gtest.h>

#include "audit_test_support.hpp"

namespace phigate::audit {
namespace {

using namespace testing;

TEST(KeyRing, LoadsBase64KeysLikeOpensslRandWrites) {
  TempDir dir;
  const Key a = make_key("a", 1), b = make_key("key-2026.11", 2);
  write_file(dir.path("a.key"), base64(a.bytes.data(), 32) + "\n");
  write_file(dir.path("key-2026.11.key"), base64(b.bytes.data(), 32));
  write_file(dir.path("README"), "ignored");
  fs::create_directory(dir.path("..2026_11_27"));  // Kubernetes Secret volume internals
  auto ring = KeyRing::load(dir.path());
  ASSERT_TRUE(ring) << ring.error().context;
  EXPECT_EQ(ring->size(), 2u);
  ASSERT_NE(ring->find("a"), nullptr);
  EXPECT_EQ(ring->find("a")->bytes, a.bytes);
  EXPECT_EQ(ring->find("key-2026.11")->bytes, b.bytes);
  EXPECT_EQ(ring->find("c"), nullptr);
  EXPECT_EQ(ring->path_for("c"), dir.path("c.key"));
}

TEST(KeyRing, MalformedKeyFileIsNamedWithoutItsContent) {
  TempDir dir;
  const Key a = make_key("a", 1);
  const std::string good = base64(a.bytes.data(), 32);
  for (const std::string& bad : {good.substr(0, 40), good + "AAAA", std::string(44, '*'), std::string(),
                                 base64(a.bytes.data(), 31), good.substr(0, 42) + "B="}) {
    write_file(dir.path("bad.key"), bad);
    auto ring = KeyRing::load(dir.path());
    ASSERT_FALSE(ring) << bad;
    EXPECT_NE(ring.error().context.find(dir.path("bad.key")), std::string::npos);
    EXPECT_EQ(ring.error().context.find(good.substr(0, 8)), std::string::npos);
    EXPECT_EQ(ring.error().kind, core::ErrorKind::Config);
  }
}

TEST(KeyRing, MissingDirOrNoKeysIsAnError) {
  TempDir dir;
  EXPECT_FALSE(KeyRing::load(dir.path("nope")));
  EXPECT_FALSE(KeyRing::load(dir.path()));
}

TEST(KeyRing, KeyIds) {
  EXPECT_TRUE(is_valid_key_id("a"));
  EXPECT_TRUE(is_valid_key_id("prod-2026_11.v2"));
  EXPECT_FALSE(is_valid_key_id(""));
  EXPECT_FALSE(is_valid_key_id(".hidden"));
  EXPECT_FALSE(is_valid_key_id("a/b"));
  EXPECT_FALSE(is_valid_key_id(std::string(65, 'a')));
}

}  // namespace
}  // namespace phigate::audit
