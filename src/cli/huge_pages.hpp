#pragma once
// Transparent huge pages for the server's heap (builds linked with tcmalloc; see huge_pages.cpp).
namespace phigate::cli {

/// Makes tcmalloc take its memory from the kernel in 2 MiB-aligned chunks advised MADV_HUGEPAGE,
/// unless PHIGATE_HUGE_PAGES is "off" or "0". Call once, first thing in `phigate run`. Whether it
/// took shows in /proc/PID/smaps: the heap's mappings carry the `hg` VmFlag (docs/deployment.md).
void use_huge_pages();

}  // namespace phigate::cli
