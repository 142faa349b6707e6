// net::Buffer and its per-thread cache of free blocks, event by event.
#include "phigate/net/buffer.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace phigate::net {
namespace {

using detail::BlockCache;

TEST(Buffer, WindowCommitConsumeAndCompaction) {
  Buffer b(Buffer::kBlockBytes);
  EXPECT_FALSE(b.has_storage());  // nothing until first use
  std::memcpy(b.space(), "hello", 5);
  b.commit(5);
  EXPECT_EQ(std::string(b.data(), b.size()), "hello");
  b.consume(2);
  EXPECT_EQ(std::string(b.data(), b.size()), "llo");
  b.consume(3);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.space_size(), Buffer::kBlockBytes);  // an emptied window starts over
  // A full tail compacts: the unread bytes move to the front.
  b.commit(Buffer::kBlockBytes);
  b.consume(Buffer::kBlockBytes - 1);
  b.space();
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.space_size(), Buffer::kBlockBytes - 1);
}

TEST(Buffer, TheRoomIsTheSameWhicheverIsAskedFirst) {
  // Callers write read(b.space(), b.space_size()): the compiler picks the order (GCC 12 evaluates
  // the size first). A full tail with unread bytes at the front must not look like no room.
  Buffer b(Buffer::kBlockBytes);
  b.space();
  b.commit(Buffer::kBlockBytes);
  b.consume(Buffer::kBlockBytes - 10);
  EXPECT_EQ(b.space_size(), Buffer::kBlockBytes - 10);  // before space(): as if compacted
  b.space();
  EXPECT_EQ(b.space_size(), Buffer::kBlockBytes - 10);  // after: compacted
  EXPECT_EQ(b.size(), 10u);
}

TEST(Buffer, ReleaseKeepsUnreadBytes) {
  Buffer b(Buffer::kBlockBytes);
  std::memcpy(b.space(), "x", 1);
  b.commit(1);
  b.release();
  ASSERT_TRUE(b.has_storage());
  EXPECT_EQ(std::string(b.data(), b.size()), "x");
  b.consume(1);
  b.release();
  EXPECT_FALSE(b.has_storage());
}

TEST(Buffer, AFreedBlockServesTheNextBufferOfThisThread) {
  auto* cache = BlockCache::local();
  ASSERT_NE(cache, nullptr);
  const char* first = nullptr;
  std::size_t cached = 0;
  {
    Buffer a(Buffer::kBlockBytes);
    first = a.space();
    cached = cache->cached();
  }
  EXPECT_EQ(cache->cached(), cached + 1);  // the block went to the cache, not to free()
  Buffer b(Buffer::kBlockBytes);
  EXPECT_EQ(b.space(), first);
  EXPECT_EQ(cache->cached(), cached);  // and came back from it
}

TEST(Buffer, TheCacheIsBounded) {
  auto* cache = BlockCache::local();
  ASSERT_NE(cache, nullptr);
  {
    std::vector<std::unique_ptr<Buffer>> many;
    for (std::size_t i = 0; i < BlockCache::kCachedBlocks + 40; ++i) {
      many.push_back(std::make_unique<Buffer>(Buffer::kBlockBytes));
      many.back()->space();
    }
    EXPECT_EQ(cache->cached(), 0u);
  }
  EXPECT_EQ(cache->cached(), BlockCache::kCachedBlocks);  // the rest went back to the allocator
}

TEST(Buffer, OtherCapacitiesBypassTheCache) {
  auto* cache = BlockCache::local();
  ASSERT_NE(cache, nullptr);
  const auto before = cache->cached();
  {
    Buffer b(512);
    b.space();
    EXPECT_EQ(b.space_size(), 512u);
  }
  EXPECT_EQ(cache->cached(), before);
}

}  // namespace
}  // namespace phigate::net
