#include <cafraft/runtime/durable_storage.hpp>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <limits>

#include <cafraft/messages/storage.pb.h>
#include <cafraft/runtime/canary.hpp>
#include <cafraft/runtime/crc32c.hpp>
#include <cafraft/runtime/logging.hpp>
#include <cafraft/runtime/wal.hpp>

namespace cafraft {

namespace {

constexpr const char* manifest_name = "MANIFEST";
constexpr const char* hard_state_name = "HARDSTATE";
constexpr const char* lock_name = "LOCK";
constexpr const char* incoming_name = "snap-incoming.tmp"; // a snapshot being received
constexpr uint64_t slot_size = 4096; // HARDSTATE holds two slots; a torn write hits one
// WalRecord.seal: its last byte, the last byte of every record, has several bits set, so a
// flipped bit cannot make a whole record end in zero.
constexpr uint32_t record_seal = 0xC35AA53Cu;

std::string segment_name(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wal-%016" PRIx64 ".log", seq);
  return buf;
}

// The 16 lowercase hex digits that segment_name() and snapshot_name() write, at `at`. Any other
// name is not one of ours (std::stoull took signs, spaces and "0x", stopped at a bad digit, or
// threw std::invalid_argument out of load(); found by the fuzz tier).
bool parse_hex16(const std::string& name, size_t at, uint64_t& x) {
  x = 0;
  for (size_t i = at; i < at + 16; ++i) {
    char c = name[i];
    if (c >= '0' && c <= '9')
      x = (x << 4) | static_cast<uint64_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      x = (x << 4) | static_cast<uint64_t>(c - 'a' + 10);
    else
      return false;
  }
  return true;
}

bool parse_segment_name(const std::string& name, uint64_t& seq) {
  if (name.size() != 24 || name.compare(0, 4, "wal-") != 0 || name.compare(20, 4, ".log") != 0)
    return false;
  return parse_hex16(name, 4, seq);
}

std::string snapshot_name(uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "snap-%016" PRIx64 ".snap", index);
  return buf;
}

bool parse_snapshot_name(const std::string& name, uint64_t& index) {
  if (name.size() != 26 || name.compare(0, 5, "snap-") != 0 || name.compare(21, 5, ".snap") != 0)
    return false;
  return parse_hex16(name, 5, index);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// The first record of a snapshot file, padded to `length` bytes when that is more.
std::string snapshot_header(const pb::SnapshotMeta& meta, size_t length = 0) {
  pb::SnapshotHeader h;
  h.set_format(storage_format);
  *h.mutable_meta() = meta;
  auto out = wal::frame(h.SerializeAsString());
  // The padding field costs two bytes or more: grow it until the frame is as long.
  for (size_t pad = 0; out.size() < length; ++pad) {
    h.set_padding(std::string(pad, '\0'));
    out = wal::frame(h.SerializeAsString());
  }
  if (length != 0 && out.size() != length)
    throw storage_error("a snapshot header does not fit the space kept for it");
  return out;
}

/// A file of a newer format than this binary reads: refused by name, whatever the flags (it is
/// neither damaged nor to be discarded).
void check_format(const std::string& file, uint32_t found) {
  if (found > storage_format)
    throw storage_error(file + " was written by cafraft format " + std::to_string(found) +
                        ", this binary reads up to " + std::to_string(storage_format) +
                        ": run the newer binary (an upgraded node never goes back)");
}

bool same_snapshot(const pb::SnapshotMeta& a, const pb::SnapshotMeta& b) {
  return a.index() == b.index() && a.term() == b.term() && a.size() == b.size() &&
         a.crc32c() == b.crc32c();
}

} // namespace

durable_storage::durable_storage(durable_options opts)
    : opts_(std::move(opts)), log_(get_logger(opts_.logger_name)) {
  if (!opts_.fs)
    opts_.fs = make_posix_disk();
}

durable_storage::~durable_storage() = default;

std::string durable_storage::path(const std::string& name) const {
  return opts_.dir + "/" + name;
}

recovered_state durable_storage::load() {
  auto& fs = *opts_.fs;
  recovered_state out;
  try {
    fs.make_dirs(opts_.dir);
    try {
      lock_ = fs.lock(path(lock_name));
    } catch (const disk_error& e) {
      if (e.code() == EWOULDBLOCK || e.code() == EAGAIN)
        throw storage_error("data directory " + opts_.dir +
                            " is in use (locked by another process, or by a node of this "
                            "process that has not stopped yet)");
      throw;
    }
    if (!fs.exists(path(manifest_name))) {
      // No manifest: a new directory, or one whose creation a crash interrupted (the manifest
      // is renamed into place last, and nothing was acknowledged before).
      std::vector<std::string> leftovers;
      for (auto& name : fs.list(opts_.dir)) {
        if (name == lock_name)
          continue;
        if (name != std::string{manifest_name} + ".tmp" && name != hard_state_name &&
            name != segment_name(1))
          throw storage_error("data directory " + opts_.dir + " has " + name +
                              " but no MANIFEST: not a cafraft data directory, or damaged");
        leftovers.push_back(name);
      }
      for (auto& name : leftovers)
        fs.remove(path(name));
      create();
      return out;
    }
    auto bytes = fs.read(path(manifest_name));
    auto scanned = wal::scan(bytes);
    pb::Manifest m;
    if (scanned.payloads.size() != 1 || scanned.end != wal::tail::clean ||
        !m.ParseFromArray(scanned.payloads[0].data(),
                          static_cast<int>(scanned.payloads[0].size())) ||
        m.format() == 0)
      throw storage_error(path(manifest_name) + " is damaged");
    check_format(path(manifest_name), m.format());
    if (m.node_id() != opts_.node_id)
      throw storage_error("data directory " + opts_.dir + " belongs to node " + m.node_id() +
                          ", not " + opts_.node_id);
    if (!opts_.cluster_id.empty() && m.cluster_id() != opts_.cluster_id)
      throw storage_error("data directory " + opts_.dir + " belongs to cluster " + m.cluster_id() +
                          ", not " + opts_.cluster_id);
    load_hard_state(out);
    auto problem = load_snapshot(out);
    if (problem.empty())
      problem = load_log(out);
    if (!problem.empty())
      discard(out, problem);
    compact_segments();
  } catch (const disk_error& e) {
    throw storage_error(std::string{"cannot open the data directory: "} + e.what());
  }
  return out;
}

void durable_storage::create() {
  auto& fs = *opts_.fs;
  pb::Manifest m;
  m.set_format(storage_format);
  m.set_cluster_id(opts_.cluster_id);
  m.set_node_id(opts_.node_id);
  // The manifest appears whole or not at all: written aside, synced, renamed into place.
  auto tmp = path(std::string{manifest_name} + ".tmp");
  fs.remove(tmp);
  fs.append(tmp, wal::frame(m.SerializeAsString()));
  fs.sync(tmp);
  write_hard_state(pb::HardState{});
  start_segment(1, 1);
  fs.rename(tmp, path(manifest_name));
  fs.sync_dir(opts_.dir);
  log_->info("{} created data directory {}", opts_.node_id, opts_.dir);
}

void durable_storage::load_hard_state(recovered_state& out) {
  auto file = path(hard_state_name);
  auto bytes = opts_.fs->read(file);
  bool found = false;
  for (uint64_t slot = 0; slot < 2; ++slot) {
    if (bytes.size() <= slot * slot_size)
      break;
    auto r = wal::scan(std::string_view{bytes}.substr(slot * slot_size, slot_size));
    pb::HardStateSlot s;
    if (r.payloads.empty() ||
        !s.ParseFromArray(r.payloads[0].data(), static_cast<int>(r.payloads[0].size())))
      continue; // a slot that a crash tore; the other one holds the state before
    check_format(file, s.format());
    if (!found || s.sequence() > hs_sequence_) {
      found = true;
      hs_sequence_ = s.sequence();
      out.hard_state = s.hard_state();
      resyncing_ = out.hard_state.resyncing();
    }
  }
  // Both slots bad cannot come from one crash: term and vote are unknown, and guessing could
  // let this node vote twice in one term. No flag overrides this.
  if (!found)
    throw storage_error(file + " is damaged at offset 0: term and vote are unknown; the node "
                               "must be removed from the cluster and added again");
}

std::string durable_storage::load_snapshot(recovered_state& out) {
  auto& fs = *opts_.fs;
  std::vector<std::pair<uint64_t, std::string>> snapshots;
  for (auto& name : fs.list(opts_.dir)) {
    uint64_t index = 0;
    if (name == incoming_name || ends_with(name, ".snap.tmp"))
      fs.remove(path(name)); // never installed: a crash came first
    else if (parse_snapshot_name(name, index))
      snapshots.emplace_back(index, name);
  }
  if (snapshots.empty())
    return {};
  // The newest one was synced whole before it was renamed into place: damage in it is damage
  // to synced data. Older ones are left over from a crash before their removal.
  auto& [index, name] = snapshots.back();
  auto where = path(name) + " at offset ";
  // The header's length first, then the header, then the data read a chunk at a time for
  // its checksum: a snapshot is never read into memory whole.
  auto head = fs.read_at(path(name), 0, 4);
  uint32_t len = 0;
  for (int i = 3; i >= 0 && head.size() >= 4; --i)
    len = (len << 8) | static_cast<uint8_t>(head[static_cast<size_t>(i)]);
  auto hlen = wal::header_size + len;
  auto header = fs.read_at(path(name), 0, hlen);
  if (head.size() < 4 || header.size() < hlen)
    return where + "0: a snapshot header cut short";
  auto r = wal::scan(header);
  pb::SnapshotHeader h;
  if (r.payloads.size() != 1 || r.end != wal::tail::clean ||
      !h.ParseFromArray(r.payloads[0].data(), static_cast<int>(r.payloads[0].size())) ||
      h.format() == 0 || h.meta().index() != index)
    return where + "0: a damaged snapshot header";
  check_format(path(name), h.format());
  uint64_t size = 0;
  uint32_t crc = 0;
  for (;;) {
    auto chunk = fs.read_at(path(name), hlen + size, opts_.read_chunk_bytes);
    if (chunk.empty())
      break;
    size += chunk.size();
    crc = crc32c(chunk, crc);
  }
  if (size != h.meta().size() || !checksum_ok(crc, h.meta().crc32c()))
    return where + std::to_string(hlen) + ": snapshot data of " + std::to_string(size) +
           " bytes does not match its size (" + std::to_string(h.meta().size()) + ") and checksum";
  out.snapshot = h.meta();
  snapshot_ = h.meta();
  snapshot_header_ = hlen;
  remove_snapshots_before(index);
  return {};
}

std::string durable_storage::load_log(recovered_state& out) {
  auto& fs = *opts_.fs;
  std::vector<std::pair<uint64_t, std::string>> segments;
  for (auto& name : fs.list(opts_.dir)) {
    uint64_t seq = 0;
    if (parse_segment_name(name, seq))
      segments.emplace_back(seq, name);
  }
  std::string problem;
  auto damaged = [&](const std::string& name, uint64_t offset, const std::string& what) {
    problem = path(name) + " at offset " + std::to_string(offset) + ": " + what;
  };
  if (segments.empty())
    damaged("wal-*.log", 0, "no WAL segment (the first one is made with the directory)");
  // A segment that restarts the log voids every segment before it: those are what a crash
  // left of their removal.
  for (size_t i = segments.size(); i-- > 1;) {
    auto bytes = fs.read_at(path(segments[i].second), 0, 512);
    auto head = wal::scan(bytes, wal::zeros::reserved);
    pb::WalRecord rec;
    if (!head.payloads.empty() &&
        rec.ParseFromArray(head.payloads[0].data(), static_cast<int>(head.payloads[0].size())) &&
        rec.restart()) {
      for (size_t k = 0; k < i; ++k)
        fs.remove(path(segments[k].second));
      fs.sync_dir(opts_.dir);
      segments.erase(segments.begin(), segments.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  // The log holds the entries after the snapshot; the WAL may begin before it or after it.
  uint64_t base = out.snapshot ? out.snapshot->index() : 0;
  uint64_t base_term = 0; // the term of the WAL's entry at `base`, 0 when it has none
  uint64_t end = 0;       // the last index the WAL holds
  auto& log = out.log;
  auto cut = [&](uint64_t from) { // removes every entry from `from` on
    end = from - 1;
    if (from <= base) {
      log.clear();
      base_term = 0;
    } else {
      log.resize(from - base - 1);
    }
  };
  segments_.clear();
  for (size_t i = 0; i < segments.size() && problem.empty(); ++i) {
    auto& [seq, name] = segments[i];
    bool last = i + 1 == segments.size();
    // A chunk at a time: a restart holds the log after the snapshot, not whole segments.
    auto file = path(name);
    wal::reader r{[&fs, file](uint64_t at, size_t len) { return fs.read_at(file, at, len); },
                  wal::zeros::reserved, opts_.read_chunk_bytes};
    auto payload = r.next();
    if (last && i > 0 && !payload && r.end() != wal::tail::corrupt) {
      // A segment begun just before a crash, without even its header: nothing is in it.
      log_->warn("{} removes {}, a segment that a crash left empty", opts_.node_id, path(name));
      fs.remove(path(name));
      fs.sync_dir(opts_.dir);
      break;
    }
    bool gap = i > 0 && seq != segments[i - 1].first + 1;
    for (size_t k = 0; payload; ++k, payload = r.next()) {
      auto offset = r.offset();
      pb::WalRecord rec;
      if (!rec.ParseFromArray(payload->data(), static_cast<int>(payload->size()))) {
        damaged(name, offset, "a record that does not parse");
        break;
      }
      if (k == 0) {
        check_format(path(name), rec.format());
        auto first = rec.first_index();
        if (rec.segment() != seq || first == 0) {
          damaged(name, offset, "a segment header that does not name this segment");
          break;
        }
        if (gap && first - 1 > base) {
          damaged(name, 0, "segment " + std::to_string(segments[i - 1].first + 1) + " is missing");
          break;
        }
        if (first > end + 1 || gap || rec.restart()) {
          // The log begins anew here, after the snapshot (or compaction removed what was
          // before it).
          if (first - 1 > base) {
            damaged(name, offset,
                    "entries " + std::to_string(end + 1) + " to " + std::to_string(first - 1) +
                        " are missing");
            break;
          }
          log.clear();
          end = first - 1;
          base_term = end == base && out.snapshot ? out.snapshot->term() : 0;
        } else {
          cut(first);
        }
        segments_.emplace_back(seq, first);
      }
      if (rec.truncate_from() > 0) {
        if (rec.truncate_from() > end + 1) {
          damaged(name, offset, "a cut beyond the end of the log");
          break;
        }
        cut(rec.truncate_from());
      }
      for (auto& e : *rec.mutable_entries()) {
        if (e.index() != end + 1) {
          damaged(name, offset, "entry " + std::to_string(e.index()) + " out of order");
          break;
        }
        end = e.index();
        if (end == base)
          base_term = e.term();
        if (end > base)
          log.push_back(std::move(e));
      }
      if (!problem.empty())
        break;
    }
    if (!problem.empty())
      break;
    reserved_ = r.file_size();
    if (last && r.valid_bytes() == 0 && r.end() == wal::tail::torn) {
      // Not even the header record is whole, and it was synced when the segment was begun:
      // damage. Cut to nothing, the segment would be refused at the next start (fuzz tier).
      damaged(name, 0, r.problem() + " in the segment's header record");
      break;
    }
    if ((r.end() == wal::tail::torn ||
         (r.end() == wal::tail::corrupt && CAFRAFT_CANARY("wal_corrupt_tail_cut_as_torn"))) &&
        last) {
      log_->warn("{} cut a torn write at the end of {} at offset {} ({}, {} bytes)", opts_.node_id,
                 file, r.valid_bytes(), r.problem(), reserved_ - r.valid_bytes());
      fs.truncate(file, r.valid_bytes()); // the next write reserves space again
      fs.sync(file);
      reserved_ = r.valid_bytes();
    } else if (r.end() != wal::tail::clean) {
      damaged(name, r.valid_bytes(),
              r.problem() + (last ? "" : " in a closed segment, which was synced whole"));
    } else if (r.valid_bytes() == 0) {
      damaged(name, 0, "a segment without its header");
    }
    segment_ = seq;
    segment_size_ = r.valid_bytes();
  }
  if (!problem.empty())
    return problem;
  last_index_ = std::max(end, base);
  if (base > 0 && (end < base || base_term != out.snapshot->term())) {
    // The WAL ends before the snapshot, or disagrees with it: a crash came between the install
    // of a snapshot from the leader and the start of the log after it. The log starts there.
    if (end > base)
      log_->warn("{} drops log entries {} to {}: they do not follow its snapshot at {}",
                 opts_.node_id, base + 1, end, base);
    log.clear();
    start_segment(segment_ + 1, base + 1, true);
    last_index_ = base;
  }
  return {};
}

void durable_storage::discard(recovered_state& out, const std::string& problem) {
  auto& fs = *opts_.fs;
  if (!opts_.discard_corrupt_log)
    throw storage_error("the log is damaged: " + problem +
                        ". The node refuses to start; discarding the local log and copying it "
                        "again from the leader is possible with discard_corrupt_log "
                        "(--discard-corrupt-log)");
  log_->error("{} discards its damaged log ({}); it will copy the log from the leader and "
              "not vote until it has caught up",
              opts_.node_id, problem);
  uint64_t next_seq = 1;
  for (auto& name : fs.list(opts_.dir)) {
    uint64_t n = 0;
    bool segment = parse_segment_name(name, n);
    if (segment)
      next_seq = std::max(next_seq, n + 1);
    if (segment || parse_snapshot_name(name, n))
      fs.rename(path(name), path(name + ".discarded"));
  }
  fs.sync_dir(opts_.dir);
  out.log.clear();
  out.snapshot.reset();
  snapshot_.reset();
  out.hard_state.set_resyncing(true);
  write_hard_state(out.hard_state);
  segments_.clear();
  start_segment(next_seq, 1);
  last_index_ = 0;
}

void durable_storage::compact_segments() {
  if (!snapshot_)
    return;
  // A snapshot closes the segment being written once it holds an eighth of a segment of
  // entries the snapshot covers, so that the next compaction can remove it: the WAL on disk
  // (and what a restart reads) stays near the entries after the last snapshots instead of
  // growing to whole segments.
  if (!segments_.empty() && segments_.back().second <= snapshot_->index() &&
      segment_size_ >= opts_.segment_bytes / 8)
    start_segment(segment_ + 1, last_index_ + 1);
  bool removed = false;
  // A segment whose successor begins at or before the entry after the snapshot holds only
  // entries the snapshot covers. Oldest first, so that a crash leaves a suffix.
  while (segments_.size() > 1 && segments_[1].second <= snapshot_->index() + 1) {
    opts_.fs->remove(path(segment_name(segments_.front().first)));
    segments_.erase(segments_.begin());
    removed = true;
  }
  if (removed)
    opts_.fs->sync_dir(opts_.dir);
}

void durable_storage::remove_snapshots_before(uint64_t index) {
  bool removed = false;
  for (auto& name : opts_.fs->list(opts_.dir)) {
    uint64_t n = 0;
    if (parse_snapshot_name(name, n) && n < index) {
      opts_.fs->remove(path(name));
      removed = true;
    }
  }
  if (removed)
    opts_.fs->sync_dir(opts_.dir);
}

void durable_storage::start_segment(uint64_t seq, uint64_t first_index, bool restart) {
  auto& fs = *opts_.fs;
  pb::WalRecord header;
  header.set_segment(seq);
  header.set_first_index(first_index);
  header.set_format(storage_format);
  header.set_restart(restart);
  header.set_seal(record_seal);
  auto name = path(segment_name(seq));
  auto bytes = wal::frame(header.SerializeAsString());
  fs.remove(name); // a segment begun before a crash and never synced into the directory
  fs.append(name, bytes);
  reserved_ = bytes.size();
  reserve(name, bytes.size()); // synced with the header
  fs.sync(name);
  fs.sync_dir(opts_.dir);
  syncs_ += 1;
  segment_ = seq;
  segment_size_ = bytes.size();
  if (restart) { // what came before is void: oldest first, so that a crash leaves a suffix
    for (auto& [old_seq, ignored] : segments_)
      fs.remove(path(segment_name(old_seq)));
    segments_.clear();
    fs.sync_dir(opts_.dir);
  }
  segments_.emplace_back(seq, first_index);
}

std::vector<std::pair<std::string, std::string>> durable_storage::describe() const {
  return {{"segments", std::to_string(segments_.size())},
          {"segment_written", std::to_string(segment_)},
          {"segment_bytes", std::to_string(segment_size_)},
          {"first_log_index", segments_.empty() ? "-" : std::to_string(segments_.front().second)},
          {"fsyncs", std::to_string(syncs_)},
          {"snapshot_index", snapshot_ ? std::to_string(snapshot_->index()) : "-"}};
}

void durable_storage::write_hard_state(const pb::HardState& hs) {
  pb::HardStateSlot s;
  s.set_format(storage_format);
  s.set_sequence(++hs_sequence_);
  *s.mutable_hard_state() = hs;
  auto bytes = wal::frame(s.SerializeAsString());
  if (bytes.size() > slot_size)
    throw storage_error("the hard state does not fit its slot (node id too long?)");
  auto file = path(hard_state_name);
  opts_.fs->write_at(file, (hs_sequence_ % 2) * slot_size, bytes);
  opts_.fs->sync(file);
  ++syncs_;
  resyncing_ = hs.resyncing();
}

void durable_storage::reserve(const std::string& name, uint64_t end) {
  if (opts_.preallocate_bytes == 0 || end <= reserved_)
    return;
  auto want = std::max(end, std::min(end + opts_.preallocate_bytes, opts_.segment_bytes));
  // When the file system cannot, the segment grows as it is written; the next one tries again.
  reserved_ = opts_.fs->preallocate(name, want) ? want : UINT64_MAX;
}

void durable_storage::append_records(const std::string& frames, uint64_t last) {
  if (segment_size_ + frames.size() > opts_.segment_bytes)
    start_segment(segment_ + 1, last_index_ + 1);
  auto name = path(segment_name(segment_));
  reserve(name, segment_size_ + frames.size());
  // Into reserved space (or at the end): after the records, never over them.
  opts_.fs->write_at(name, segment_size_, frames);
  if (!CAFRAFT_CANARY("wal_append_not_synced")) // else: the next write or close would sync it
    opts_.fs->sync(name);
  ++syncs_;
  segment_size_ += frames.size();
  last_index_ = last;
}

void durable_storage::write(std::vector<persist_batch> batches) {
  if (failed_)
    throw storage_error("storage stopped after an earlier failure");
  try {
    const pb::HardState* hs = nullptr;
    for (auto& b : batches)
      if (b.hard_state)
        hs = &*b.hard_state;
    // The hard state first (an entry of a new term is never durable before the term is),
    // except when it ends a resync: that must not be durable before the log it vouches for.
    bool hs_after = hs && !hs->resyncing() && resyncing_;
    if (hs && !hs_after)
      write_hard_state(*hs);
    std::string frames, payload;
    uint64_t last = last_index_;
    for (auto& b : batches) { // entries move into the records: no copy per entry
      if (b.snapshot) {
        if (!frames.empty())
          append_records(frames, last);
        frames.clear();
        install(path(incoming_name), *b.snapshot, b.reset_log);
        last = last_index_;
      }
      if (b.truncate_from == 0 && b.entries.empty())
        continue;
      pb::WalRecord rec;
      if (b.truncate_from > 0 && b.truncate_from <= last) { // a cut past the end cuts nothing
        rec.set_truncate_from(b.truncate_from);
        last = b.truncate_from - 1;
      }
      for (auto& e : b.entries) {
        if (e.index() != last + 1)
          throw storage_error("append of index " + std::to_string(e.index()) + " after " +
                              std::to_string(last));
        last = e.index();
        rec.mutable_entries()->Add(std::move(e));
      }
      if (rec.truncate_from() > 0 || rec.entries_size() > 0) {
        rec.set_seal(record_seal);
        rec.SerializeToString(&payload);
        wal::append_frame(frames, payload);
      }
    }
    if (!frames.empty())
      append_records(frames, last);
    if (hs_after)
      write_hard_state(*hs);
  } catch (const disk_error& e) {
    fail(e);
  }
}

void durable_storage::fail(const disk_error& e) {
  // Never retried: after a failed fsync the kernel may have dropped the dirty pages, and a
  // retry that succeeds would claim durability for data that is gone.
  failed_ = true;
  if (e.no_space())
    throw storage_full(std::string{"the disk is full: "} + e.what());
  throw storage_error(std::string{"a write failed: "} + e.what());
}

void durable_storage::install(const std::string& tmp, const pb::SnapshotMeta& meta,
                              bool reset_log) {
  if (!incoming_complete() || !same_snapshot(*incoming_complete(), meta))
    throw storage_error("install of snapshot " + std::to_string(meta.index()) +
                        ", which was not received whole");
  auto& fs = *opts_.fs;
  // receive_chunk() synced the file; the rename makes it the snapshot at once.
  fs.rename(tmp, path(snapshot_name(meta.index())));
  fs.sync_dir(opts_.dir);
  snapshot_ = meta;
  snapshot_header_ = incoming_header_;
  incoming_clear();
  if (reset_log) {
    // The log begins anew after the snapshot; earlier segments are void and removed.
    start_segment(segment_ + 1, meta.index() + 1, true);
    last_index_ = meta.index();
  }
  remove_snapshots_before(meta.index());
  compact_segments();
}

void durable_storage::saving_begin(const pb::SnapshotMeta& meta) {
  if (failed_)
    throw storage_error("storage stopped after an earlier failure");
  // Written aside and synced, then renamed into place: a snapshot is whole or absent. Its
  // header comes first but its size and checksum are known last: the header is written with
  // the largest values and padded to the same length at the end.
  auto placeholder = meta;
  placeholder.set_size(std::numeric_limits<uint64_t>::max());
  placeholder.set_crc32c(std::numeric_limits<uint32_t>::max());
  // With room for 16 bytes of padding, so that any real size and checksum can be padded to it.
  auto header = snapshot_header(placeholder, snapshot_header(placeholder).size() + 18);
  saving_name_ = snapshot_name(meta.index()) + ".tmp";
  saving_header_ = header.size();
  try {
    opts_.fs->remove(path(saving_name_));
    opts_.fs->append(path(saving_name_), header);
  } catch (const disk_error& e) {
    fail(e);
  }
}

void durable_storage::saving_append(std::string_view data) {
  if (failed_)
    throw storage_error("storage stopped after an earlier failure");
  try {
    opts_.fs->append(path(saving_name_), data);
  } catch (const disk_error& e) {
    fail(e);
  }
}

void durable_storage::saving_finish(const pb::SnapshotMeta& meta) {
  if (failed_)
    throw storage_error("storage stopped after an earlier failure");
  auto& fs = *opts_.fs;
  auto tmp = path(std::exchange(saving_name_, {}));
  try {
    if (snapshot_ && meta.index() <= snapshot_->index()) {
      fs.remove(tmp);
      return;
    }
    fs.write_at(tmp, 0, snapshot_header(meta, saving_header_));
    fs.sync(tmp);
    fs.rename(tmp, path(snapshot_name(meta.index())));
    fs.sync_dir(opts_.dir);
    ++syncs_;
    snapshot_ = meta;
    snapshot_header_ = saving_header_;
    remove_snapshots_before(meta.index());
    compact_segments();
  } catch (const disk_error& e) {
    fail(e);
  }
}

namespace {

/// Reads the data of a snapshot file through a reader of its own.
class file_source : public snapshot_source {
public:
  file_source(std::unique_ptr<file_reader> file, uint64_t offset, uint64_t size)
      : file_(std::move(file)), offset_(offset), size_(size) {}
  size_t read(char* buf, size_t n) override {
    n = static_cast<size_t>(std::min<uint64_t>(n, size_ - pos_));
    if (n == 0)
      return 0;
    auto got = file_->read_at(offset_ + pos_, n);
    if (got.empty())
      throw std::runtime_error("the snapshot file ends before its data");
    got.copy(buf, got.size());
    pos_ += got.size();
    return got.size();
  }
  uint64_t size() const override { return size_; }

private:
  std::unique_ptr<file_reader> file_;
  uint64_t offset_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

} // namespace

std::unique_ptr<snapshot_source> durable_storage::open_snapshot() {
  if (!snapshot_)
    return nullptr;
  try {
    return std::make_unique<file_source>(
        opts_.fs->open_reader(path(snapshot_name(snapshot_->index()))), snapshot_header_,
        snapshot_->size());
  } catch (const disk_error& e) {
    fail(e);
  }
}

bool durable_storage::read_snapshot(uint64_t offset, size_t max, pb::SnapshotMeta& meta,
                                    std::string& data) {
  if (!snapshot_)
    return false;
  meta = *snapshot_;
  auto n = offset < meta.size() ? std::min<uint64_t>(max, meta.size() - offset) : 0;
  try {
    data = opts_.fs->read_at(path(snapshot_name(meta.index())), snapshot_header_ + offset,
                             static_cast<size_t>(n));
  } catch (const disk_error& e) {
    fail(e);
  }
  return true;
}

void durable_storage::incoming_begin(const pb::SnapshotMeta& meta) {
  auto& fs = *opts_.fs;
  auto tmp = path(incoming_name);
  auto header = snapshot_header(meta);
  try {
    fs.remove(tmp);
    fs.append(tmp, header);
  } catch (const disk_error& e) {
    fail(e);
  }
  incoming_header_ = header.size();
}

void durable_storage::incoming_append(std::string_view data) {
  try {
    opts_.fs->append(path(incoming_name), data);
  } catch (const disk_error& e) {
    fail(e);
  }
}

void durable_storage::incoming_finish() {
  try {
    opts_.fs->sync(path(incoming_name));
    ++syncs_;
  } catch (const disk_error& e) {
    fail(e);
  }
}

} // namespace cafraft
