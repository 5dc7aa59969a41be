#include "runtime/durable_storage.hpp"

#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "messages/storage.pb.h"
#include "runtime/logging.hpp"
#include "runtime/wal.hpp"

namespace cafraft {

namespace {

constexpr const char* manifest_name = "MANIFEST";
constexpr const char* hard_state_name = "HARDSTATE";
constexpr const char* lock_name = "LOCK";
constexpr uint64_t slot_size = 4096; // HARDSTATE holds two slots; a torn write hits one

std::string segment_name(uint64_t seq) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "wal-%016" PRIx64 ".log", seq);
  return buf;
}

bool parse_segment_name(const std::string& name, uint64_t& seq) {
  if (name.size() != 24 || name.compare(0, 4, "wal-") != 0 || name.compare(20, 4, ".log") != 0)
    return false;
  seq = std::stoull(name.substr(4, 16), nullptr, 16);
  return true;
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
        m.format() != 1)
      throw storage_error(path(manifest_name) + " is damaged");
    if (m.node_id() != opts_.node_id)
      throw storage_error("data directory " + opts_.dir + " belongs to node " + m.node_id() +
                          ", not " + opts_.node_id);
    if (!opts_.cluster_id.empty() && m.cluster_id() != opts_.cluster_id)
      throw storage_error("data directory " + opts_.dir + " belongs to cluster " + m.cluster_id() +
                          ", not " + opts_.cluster_id);
    load_hard_state(out);
    load_log(out);
  } catch (const disk_error& e) {
    throw storage_error(std::string{"cannot open the data directory: "} + e.what());
  }
  return out;
}

void durable_storage::create() {
  auto& fs = *opts_.fs;
  pb::Manifest m;
  m.set_format(1);
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

void durable_storage::load_log(recovered_state& out) {
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
  auto& log = out.log;
  for (size_t i = 0; i < segments.size() && problem.empty(); ++i) {
    auto& [seq, name] = segments[i];
    bool last = i + 1 == segments.size();
    if (i > 0 && seq != segments[i - 1].first + 1) {
      damaged(name, 0, "segment " + std::to_string(segments[i - 1].first + 1) + " is missing");
      break;
    }
    auto bytes = fs.read(path(name));
    auto r = wal::scan(bytes);
    if (last && i > 0 && r.payloads.empty() && r.end != wal::tail::corrupt) {
      // A segment begun just before a crash, without even its header: nothing is in it.
      log_->warn("{} removes {}, a segment that a crash left empty", opts_.node_id, path(name));
      fs.remove(path(name));
      fs.sync_dir(opts_.dir);
      segments.pop_back();
      break;
    }
    uint64_t offset = 0;
    for (size_t k = 0; k < r.payloads.size(); ++k) {
      pb::WalRecord rec;
      if (!rec.ParseFromArray(r.payloads[k].data(), static_cast<int>(r.payloads[k].size()))) {
        damaged(name, offset, "a record that does not parse");
        break;
      }
      if (k == 0 && (rec.segment() != seq || rec.first_index() != log.size() + 1)) {
        damaged(name, offset, "the segment header does not follow the previous segment");
        break;
      }
      if (rec.truncate_from() > 0) {
        if (rec.truncate_from() > log.size() + 1) {
          damaged(name, offset, "a cut beyond the end of the log");
          break;
        }
        log.resize(rec.truncate_from() - 1);
      }
      for (auto& e : *rec.mutable_entries()) {
        if (e.index() != log.size() + 1) {
          damaged(name, offset, "entry " + std::to_string(e.index()) + " out of order");
          break;
        }
        log.push_back(std::move(e));
      }
      if (!problem.empty())
        break;
      offset += wal::header_size + r.payloads[k].size();
    }
    if (!problem.empty())
      break;
    if (r.end == wal::tail::torn && last) {
      log_->warn("{} cut a torn write at the end of {} at offset {} ({}, {} bytes)", opts_.node_id,
                 path(name), r.valid_bytes, r.problem, bytes.size() - r.valid_bytes);
      fs.truncate(path(name), r.valid_bytes);
      fs.sync(path(name));
    } else if (r.end != wal::tail::clean) {
      damaged(name, r.valid_bytes,
              r.problem + (last ? "" : " in a closed segment, which was synced whole"));
    } else if (r.payloads.empty()) {
      damaged(name, 0, "a segment without its header");
    }
    segment_ = seq;
    segment_size_ = r.valid_bytes;
  }
  if (!problem.empty()) {
    if (!opts_.discard_corrupt_log)
      throw storage_error("the log is damaged: " + problem +
                          ". The node refuses to start; discarding the local log and copying it "
                          "again from the leader is possible with discard_corrupt_log "
                          "(--discard-corrupt-log)");
    log_->error("{} discards its damaged log ({}); it will copy the log from the leader and "
                "not vote until it has caught up",
                opts_.node_id, problem);
    for (auto& [seq, name] : segments)
      fs.rename(path(name), path(name + ".discarded"));
    fs.sync_dir(opts_.dir);
    log.clear();
    out.hard_state.set_resyncing(true);
    write_hard_state(out.hard_state);
    start_segment(segments.empty() ? 1 : segments.back().first + 1, 1);
  }
  last_index_ = log.size();
}

void durable_storage::start_segment(uint64_t seq, uint64_t first_index) {
  auto& fs = *opts_.fs;
  pb::WalRecord header;
  header.set_segment(seq);
  header.set_first_index(first_index);
  auto name = path(segment_name(seq));
  auto bytes = wal::frame(header.SerializeAsString());
  fs.remove(name); // a segment begun before a crash and never synced into the directory
  fs.append(name, bytes);
  fs.sync(name);
  fs.sync_dir(opts_.dir);
  syncs_ += 1;
  segment_ = seq;
  segment_size_ = bytes.size();
}

void durable_storage::write_hard_state(const pb::HardState& hs) {
  pb::HardStateSlot s;
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

void durable_storage::append_records(const std::string& frames, uint64_t last) {
  if (segment_size_ + frames.size() > opts_.segment_bytes)
    start_segment(segment_ + 1, last_index_ + 1);
  auto name = path(segment_name(segment_));
  opts_.fs->append(name, frames);
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
    std::string frames;
    uint64_t last = last_index_;
    for (auto& b : batches) { // entries move into the records: no copy per entry
      if (b.hard_state)
        hs = &*b.hard_state;
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
      if (rec.truncate_from() > 0 || rec.entries_size() > 0)
        frames += wal::frame(rec.SerializeAsString());
    }
    // The hard state first (an entry of a new term is never durable before the term is),
    // except when it ends a resync: that must not be durable before the log it vouches for.
    bool hs_after = hs && !hs->resyncing() && resyncing_;
    if (hs && !hs_after)
      write_hard_state(*hs);
    if (!frames.empty())
      append_records(frames, last);
    if (hs_after)
      write_hard_state(*hs);
  } catch (const disk_error& e) {
    // Never retried: after a failed fsync the kernel may have dropped the dirty pages, and a
    // retry that succeeds would claim durability for data that is gone.
    failed_ = true;
    if (e.no_space())
      throw storage_full(std::string{"the disk is full: "} + e.what());
    throw storage_error(std::string{"a write failed: "} + e.what());
  }
}

} // namespace cafraft
