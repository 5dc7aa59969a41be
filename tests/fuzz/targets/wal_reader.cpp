// The record framing of WAL segments and of the small files (runtime/wal.cpp): wal::scan over a
// file in memory, and wal::reader over the same file read in chunks of every size, in both
// modes (zeros after the records torn, or reserved space). The chunked reader must find
// exactly what the scan finds (the same records, the same end, the same problem, the same file
// size), and each record must parse or be refused by protobuf without harm.
//
// Input: u8 mode, u16 chunk size, then the file.
#include "fuzz_common.hpp"

using namespace cafraft;
namespace fz = cafraft::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fz::input in{data, size};
  auto mode = in.u8();
  size_t chunk = in.u16() % 4096 + 1; // below wal::header_size the reader takes a header
  std::string file{in.rest()};
  auto after = (mode & 1) != 0 ? wal::zeros::reserved : wal::zeros::torn;
  auto whole = wal::scan(file, after);
  FUZZ_CHECK(whole.valid_bytes <= file.size(), "valid bytes past the end");
  if (whole.end == wal::tail::clean && after == wal::zeros::torn)
    FUZZ_CHECK(whole.valid_bytes == file.size(), "clean, but the records end before the file");
  FUZZ_CHECK(whole.end == wal::tail::clean || !whole.problem.empty(), "no problem named");
  size_t fetches = 0;
  wal::reader r{[&](uint64_t offset, size_t len) {
                  ++fetches;
                  FUZZ_CHECK(fetches < 4 * (file.size() / chunk + 8), "the reader reads on and on");
                  return offset < file.size() ? file.substr(static_cast<size_t>(offset), len)
                                              : std::string{};
                },
                after, chunk};
  size_t i = 0;
  uint64_t at = 0;
  while (auto p = r.next()) {
    FUZZ_CHECK(i < whole.payloads.size() && *p == whole.payloads[i],
               "record %zu differs between the chunked reader and the scan", i);
    FUZZ_CHECK(r.offset() == at, "record %zu at %llu, expected at %llu", i,
               static_cast<unsigned long long>(r.offset()), static_cast<unsigned long long>(at));
    at += wal::header_size + p->size();
    pb::WalRecord rec;
    rec.ParseFromArray(p->data(), static_cast<int>(p->size()));
    ++i;
  }
  FUZZ_CHECK(i == whole.payloads.size(), "the chunked reader found %zu records, the scan %zu", i,
             whole.payloads.size());
  FUZZ_CHECK(r.valid_bytes() == whole.valid_bytes && r.end() == whole.end &&
                 r.problem() == whole.problem,
             "the chunked reader ends at %llu (%s), the scan at %llu (%s)",
             static_cast<unsigned long long>(r.valid_bytes()), r.problem().c_str(),
             static_cast<unsigned long long>(whole.valid_bytes), whole.problem.c_str());
  FUZZ_CHECK(r.file_size() == file.size(), "file size %llu, not %zu",
             static_cast<unsigned long long>(r.file_size()), file.size());
  // What frame() writes reads back.
  if (!whole.payloads.empty()) {
    std::string again;
    for (auto p : whole.payloads)
      wal::append_frame(again, p);
    auto back = wal::scan(again, after);
    FUZZ_CHECK(back.end == wal::tail::clean || after == wal::zeros::reserved,
               "framed records do not read back: %s", back.problem.c_str());
    if (back.end == wal::tail::clean && after == wal::zeros::torn)
      FUZZ_CHECK(back.payloads == whole.payloads, "framed records read back as others");
  }
  return 0;
}
