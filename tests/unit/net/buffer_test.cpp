// net::Buffer and its per-thread cache of free blocks, event by event.
#include "phigate/net/buffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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

TEST(Buffer, TrimFreesOnlyBlocksASecondDidNotUse) {
  auto* cache = BlockCache::local();
  ASSERT_NE(cache, nullptr);
  constexpr std::size_t kBurst = BlockCache::kKeptBlocks + 100;
  {
    // A burst: more buffers than the cache keeps when idle, all freed into it.
    std::vector<std::unique_ptr<Buffer>> many;
    for (std::size_t i = 0; i < kBurst; ++i) {
      many.push_back(std::make_unique<Buffer>(Buffer::kBlockBytes));
      many.back()->space();
    }
  }
  ASSERT_GE(cache->cached(), kBurst);
  // The burst's own takes emptied the cache: every block was used since the last trim.
  EXPECT_EQ(cache->trim(), 0u);
  const auto full = cache->cached();
  // Ten blocks in use during the next interval; the rest lay unused.
  std::vector<const char*> hot;
  {
    std::vector<std::unique_ptr<Buffer>> few;
    for (int i = 0; i < 10; ++i) {
      few.push_back(std::make_unique<Buffer>(Buffer::kBlockBytes));
      hot.push_back(few.back()->space());
    }
  }
  EXPECT_EQ(cache->trim(), full - BlockCache::kKeptBlocks);  // down to the kept blocks, no lower
  EXPECT_EQ(cache->cached(), BlockCache::kKeptBlocks);
  // The ones just used stayed (they are on top): the next buffer gets one of them.
  Buffer b(Buffer::kBlockBytes);
  EXPECT_NE(std::find(hot.begin(), hot.end(), b.space()), hot.end());
  EXPECT_EQ(cache->trim(), 0u);  // never below the kept blocks
  EXPECT_EQ(cache->cached(), BlockCache::kKeptBlocks - 1);
}

TEST(Buffer, TrimKeepsWhatAnIdleIntervalLeftUnderTheKeptBlocks) {
  auto* cache = BlockCache::local();
  ASSERT_NE(cache, nullptr);
  cache->trim();
  cache->trim();  // whatever earlier tests left: now at most kKeptBlocks
  ASSERT_LE(cache->cached(), BlockCache::kKeptBlocks);
  const auto before = cache->cached();
  EXPECT_EQ(cache->trim(), 0u);
  EXPECT_EQ(cache->cached(), before);
  EXPECT_EQ(net::trim_block_cache(), 0u);
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
