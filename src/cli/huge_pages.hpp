#pragma once
// Transparent huge pages for the server's heap (builds linked with tcmalloc; see huge_pages.cpp).
#include <string>

namespace phigate::cli {

/// Makes tcmalloc take its memory from the kernel in 2 MiB-aligned chunks advised MADV_HUGEPAGE,
/// unless PHIGATE_HUGE_PAGES says off (off, 0, false, no; any case). Call once, first thing in
/// `phigate run`. Returns an error for a value that is neither on nor off (the caller refuses to
/// start), else "". Whether it took shows in /proc/PID/smaps: the heap's mappings carry the `hg`
/// VmFlag (docs/deployment.md).
std::string use_huge_pages();

}  // namespace phigate::cli
