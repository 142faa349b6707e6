#include "huge_pages.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <limits>
#include <string>

#ifdef PHIGATE_HUGE_PAGES_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif

// Why: a worker at 100 HTTP/2 streams per connection keeps ~1,600 streams in flight, each with
// its state, coroutine frames, codec records and a 16 KiB read block, spread over tens of MiB of
// heap that every request walks again while it is cold. With 4 KiB pages that is thousands of
// pages and TLB misses; in a virtual machine (nested paging) each miss walks two sets of page
// tables. With this, the same binary served 2-9 % more requests per CPU-second at 100 streams per
// connection, 2.5 % more at 1, level at 10 (paired runs, docs/perf-h2-many-streams.md, round 11).
// Debian's kernels default to `madvise`: only advised ranges get huge pages, so the heap asks.
//
// How: tcmalloc (gperftools) takes its memory through a SysAllocator, which a program may replace
// (MallocExtension::SetSystemAllocator). Ours asks the default one for a multiple of 2 MiB, aligned
// to 2 MiB (a huge page is only used where a whole aligned 2 MiB range is in one mapping), and
// advises the chunk MADV_HUGEPAGE. tcmalloc gives freed pages back with MADV_DONTNEED as before (the
// kernel splits a huge page for that). Costs (docs/deployment.md, "Memory: huge pages"): the heap
// grows in 2 MiB steps and a touched huge page is resident whole; with the kernel's defaults a
// fault in an advised range may compact memory first (THP `defrag`), and khugepaged may fill a
// range tcmalloc gave back (`max_ptes_none`). PHIGATE_HUGE_PAGES=off keeps 4 KiB pages; a kernel
// with THP `never` ignores the advice.

namespace phigate::cli {

#ifdef PHIGATE_HUGE_PAGES_TCMALLOC
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

class HugePageAllocator final : public SysAllocator {
 public:
  explicit HugePageAllocator(SysAllocator* inner) : inner_(inner) {}

  // Called by tcmalloc under its system-allocator lock (and its page-heap or metadata lock): no
  // allocation here.
  void* Alloc(std::size_t size, std::size_t* actual_size, std::size_t alignment) override {
    // The default allocators add the alignment to the size: stay clear of the top of size_t.
    if (size <= std::numeric_limits<std::size_t>::max() - 2 * kHugePage) {
      const std::size_t rounded = (size + kHugePage - 1) & ~(kHugePage - 1);
      if (void* p = inner_->Alloc(rounded, actual_size, std::max(alignment, kHugePage))) {
        // Best effort: a kernel without THP says EINVAL and the memory is as before.
        (void)madvise(p, actual_size != nullptr ? *actual_size : rounded, MADV_HUGEPAGE);
        return p;
      }
    }
    return inner_->Alloc(size, actual_size, alignment);  // address space short: as tcmalloc would
  }

 private:
  SysAllocator* inner_;
};

}  // namespace
#endif

std::string use_huge_pages() {
  if (const char* v = std::getenv("PHIGATE_HUGE_PAGES")) {
    std::string s(v);
    for (auto& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (s == "off" || s == "0" || s == "false" || s == "no") return {};
    if (s != "on" && s != "1" && s != "true" && s != "yes") {
      return "PHIGATE_HUGE_PAGES: '" + std::string(v) +
             "' is neither on nor off (on, off, 1, 0, true, false, yes, no)";
    }
  }
#ifdef PHIGATE_HUGE_PAGES_TCMALLOC
  auto* ext = MallocExtension::instance();
  SysAllocator* inner = ext->GetSystemAllocator();
  if (inner == nullptr) return {};
  // Never freed: tcmalloc may grow its heap until the process ends.
  static auto* const ours = new HugePageAllocator(inner);
  ext->SetSystemAllocator(ours);
#endif
  return {};
}

}  // namespace phigate::cli
