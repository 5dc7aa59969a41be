// The in-memory crash disk of tests/crash_disk.hpp. The current view is kept up to date as
// operations are issued; a crash image is rebuilt by replaying the log over the durable base.
#include "tests/crash_disk.hpp"

#include <algorithm>
#include <utility>

namespace cafraft::test {

namespace {

constexpr size_t npos = std::string::npos;

std::string parent_of(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == npos)
    return {};
  return pos == 0 ? std::string("/") : path.substr(0, pos);
}

// "dir/" and "dir" name the same directory.
std::string norm_dir(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  return dir;
}

} // namespace

struct crash_disk::lock_table {
  std::mutex mtx;
  std::set<std::string> held;
};

class crash_disk::held_lock : public dir_lock {
public:
  held_lock(std::shared_ptr<lock_table> table, std::string path)
      : table_(std::move(table)), path_(std::move(path)) {}
  ~held_lock() override {
    std::lock_guard<std::mutex> guard(table_->mtx);
    table_->held.erase(path_);
  }

private:
  std::shared_ptr<lock_table> table_;
  std::string path_;
};

crash_disk::crash_disk() : locks_(std::make_shared<lock_table>()) {}

// Replay must tolerate operations whose preconditions do not hold in a crash image (a rename
// whose source was never durably created): it skips them, as the file system would have
// nothing to act on. Data written to an inode whose creation is lost stays unreachable.
void crash_disk::apply(image& img, const op& o, size_t torn_bytes) {
  auto unbind = [&img](const std::string& name) {
    auto it = img.names.find(name);
    if (it == img.names.end())
      return;
    img.inodes.erase(it->second);
    img.names.erase(it);
  };
  std::string_view data = o.data;
  if (torn_bytes < data.size())
    data = data.substr(0, torn_bytes);
  switch (o.what) {
  case kind::create:
    unbind(o.path);
    img.names[o.path] = o.inode;
    img.inodes[o.inode];
    break;
  case kind::append:
    img.inodes[o.inode].append(data);
    break;
  case kind::write_at: {
    if (data.empty())
      break; // a write torn before its first byte does not extend the file either
    auto& content = img.inodes[o.inode];
    if (content.size() < o.offset + data.size())
      content.resize(o.offset + data.size(), '\0');
    content.replace(o.offset, data.size(), data);
    break;
  }
  case kind::truncate:
    img.inodes[o.inode].resize(o.offset, '\0');
    break;
  case kind::preallocate: {
    auto& content = img.inodes[o.inode];
    if (content.size() < o.offset)
      content.resize(o.offset, '\0');
    break;
  }
  case kind::rename: {
    auto it = img.names.find(o.path);
    if (it == img.names.end())
      break;
    auto inode = it->second;
    img.names.erase(it);
    unbind(o.to);
    img.names[o.to] = inode;
    break;
  }
  case kind::remove:
    unbind(o.path);
    break;
  case kind::set:
    unbind(o.path);
    img.names[o.path] = o.inode;
    img.inodes[o.inode] = o.data;
    break;
  }
}

void crash_disk::make_dirs(const std::string& path) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto dir = norm_dir(path);
  for (size_t pos = dir.find('/', 1); pos != npos; pos = dir.find('/', pos + 1))
    dirs_.insert(dir.substr(0, pos));
  if (!dir.empty() && dir != "/")
    dirs_.insert(dir);
}

bool crash_disk::exists(const std::string& path) {
  std::lock_guard<std::mutex> guard(mtx_);
  return current_.names.count(path) > 0 || dirs_.count(norm_dir(path)) > 0;
}

std::vector<std::string> crash_disk::list(const std::string& dir) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto d = norm_dir(dir);
  if (!dir_exists(d))
    throw disk_error("opendir", dir, ENOENT);
  std::vector<std::string> out;
  for (auto& entry : current_.names)
    if (parent_of(entry.first) == d)
      out.push_back(d.empty() ? entry.first : entry.first.substr(d.size() + (d == "/" ? 0 : 1)));
  std::sort(out.begin(), out.end());
  return out;
}

std::string crash_disk::read(const std::string& path) {
  return read_at(path, 0, std::string::npos);
}

std::string crash_disk::read_at(const std::string& path, uint64_t offset, size_t len) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto it = current_.names.find(path);
  if (it == current_.names.end())
    throw disk_error("open", path, ENOENT);
  auto& all = current_.inodes.at(it->second);
  auto out = offset < all.size() ? all.substr(offset, len) : std::string{};
  largest_read_ = std::max<uint64_t>(largest_read_, out.size());
  return out;
}

namespace {

class copied_reader : public file_reader {
public:
  explicit copied_reader(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string read_at(uint64_t offset, size_t len) override {
    return offset < bytes_.size() ? bytes_.substr(offset, len) : std::string{};
  }

private:
  std::string bytes_;
};

} // namespace

std::unique_ptr<file_reader> crash_disk::open_reader(const std::string& path) {
  std::lock_guard<std::mutex> guard(mtx_);
  auto it = current_.names.find(path);
  if (it == current_.names.end())
    throw disk_error("open", path, ENOENT);
  return std::make_unique<copied_reader>(current_.inodes.at(it->second));
}

void crash_disk::append(const std::string& path, std::string_view data) {
  std::lock_guard<std::mutex> guard(mtx_);
  begin_op();
  check_open(path);
  check_space(path, data.size());
  auto inode = create_if_missing(path);
  if (data.empty())
    return;
  issue({kind::append, path, {}, inode, 0, std::string(data)});
  bytes_written_ += data.size();
}

void crash_disk::write_at(const std::string& path, uint64_t offset, std::string_view data) {
  std::lock_guard<std::mutex> guard(mtx_);
  begin_op();
  check_open(path);
  uint64_t size = 0;
  if (auto it = current_.names.find(path); it != current_.names.end())
    size = current_.inodes.at(it->second).size();
  uint64_t end = offset + data.size();
  check_space(path, data.empty() || end <= size ? 0 : end - size);
  auto inode = create_if_missing(path);
  if (data.empty())
    return;
  issue({kind::write_at, path, {}, inode, offset, std::string(data)});
  bytes_written_ += data.size();
}

void crash_disk::sync(const std::string& path) {
  std::lock_guard<std::mutex> guard(mtx_);
  begin_op();
  auto it = current_.names.find(path);
  if (it == current_.names.end())
    throw disk_error("open", path, ENOENT);
  if (syncs_left_ == 0)
    throw disk_error("fdatasync", path, sync_err_);
  if (syncs_left_ != npos)
    --syncs_left_;
  // fdatasync covers the inode, whatever name it had when it was written.
  for (auto& o : log_) {
    bool data_op = o.what == kind::append || o.what == kind::write_at || o.what == kind::truncate ||
                   o.what == kind::preallocate;
    if (!o.durable && data_op && o.inode == it->second) {
      o.durable = true;
      --pending_;
    }
  }
  ++syncs_;
  compact();
}

void crash_disk::truncate(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> guard(mtx_);
  begin_op();
  auto it = current_.names.find(path);
  if (it == current_.names.end())
    throw disk_error("truncate", path, ENOENT);
  issue({kind::truncate, path, {}, it->second, size, {}});
}

bool crash_disk::preallocate(const std::string& path, uint64_t size) {
  std::lock_guard<std::mutex> guard(mtx_);
  begin_op();
  check_open(path);
  uint64_t have = 0;
  if (auto it = current_.names.find(path); it != current_.names.end())
    have = current_.inodes.at(it->second).size();
  if (size > have && !has_space(size - have))
    return false;
  auto inode = create_if_missing(path);
  if (size > have)
    issue({kind::preallocate, path, {}, inode, size, {}});
  return true;
}

void crash_disk::rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> guard(mtx_);
  begin_op();
  if (current_.names.count(from) == 0)
    throw disk_error("rename", from, ENOENT);
  if (!dir_exists(parent_of(to)))
    throw disk_error("rename", to, ENOENT);
  if (dirs_.count(to) > 0)
    throw disk_error("rename", to, EISDIR);
  if (from != to) // POSIX: renaming a file onto itself does nothing
    issue({kind::rename, from, to, 0, 0, {}});
}

void crash_disk::remove(const std::string& path) {
  std::lock_guard<std::mutex> guard(mtx_);
  begin_op();
  if (current_.names.count(path) == 0)
    return; // as disk::remove promises: removing a missing file is not an error
  issue({kind::remove, path, {}, 0, 0, {}});
}

void crash_disk::sync_dir(const std::string& dir) {
  std::lock_guard<std::mutex> guard(mtx_);
  begin_op();
  auto d = norm_dir(dir);
  if (!dir_exists(d))
    throw disk_error("open", dir, ENOENT);
  for (auto& o : log_) {
    if (o.durable)
      continue;
    bool in_dir = ((o.what == kind::create || o.what == kind::remove) && parent_of(o.path) == d) ||
                  (o.what == kind::rename && parent_of(o.to) == d);
    if (in_dir) {
      o.durable = true;
      --pending_;
    }
  }
  compact();
}

std::unique_ptr<dir_lock> crash_disk::lock(const std::string& path) {
  std::lock_guard<std::mutex> guard(mtx_);
  if (!dir_exists(parent_of(path)))
    throw disk_error("open", path, ENOENT);
  std::lock_guard<std::mutex> table_guard(locks_->mtx);
  if (!locks_->held.insert(path).second)
    throw disk_error("lock", path, EWOULDBLOCK);
  return std::make_unique<held_lock>(locks_, path);
}

size_t crash_disk::pending() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return pending_;
}

size_t crash_disk::pending_bytes(size_t i) const {
  std::lock_guard<std::mutex> guard(mtx_);
  auto& o = pending_op(i);
  return o.what == kind::append || o.what == kind::write_at ? o.data.size() : 0;
}

std::shared_ptr<crash_disk> crash_disk::crashed(size_t keep, size_t torn_bytes) const {
  std::lock_guard<std::mutex> guard(mtx_);
  return crashed_locked(keep, torn_bytes);
}

std::shared_ptr<crash_disk> crash_disk::crashed_locked(size_t keep, size_t torn_bytes) const {
  if (keep > pending_)
    throw std::out_of_range("crash_disk::crashed: keep exceeds pending()");
  image img = base_;
  size_t seen = 0; // pending operations met so far
  for (auto& o : log_) {
    if (o.durable) {
      apply(img, o, npos);
    } else {
      if (seen < keep)
        apply(img, o, seen + 1 == keep ? torn_bytes : npos);
      ++seen;
    }
  }
  // Drop the inodes that no name reaches: nothing can write to them any more.
  image reachable;
  reachable.names = img.names;
  for (auto& entry : img.names)
    reachable.inodes[entry.second] = std::move(img.inodes[entry.second]);
  auto out = std::make_shared<crash_disk>();
  out->base_ = reachable;
  out->current_ = std::move(reachable);
  out->dirs_ = dirs_;
  out->next_inode_ = next_inode_;
  return out;
}

std::shared_ptr<crash_disk> crash_disk::clone() const {
  std::lock_guard<std::mutex> guard(mtx_);
  auto out = std::make_shared<crash_disk>();
  out->base_ = base_;
  out->current_ = current_;
  out->log_ = log_;
  out->pending_ = pending_;
  out->dirs_ = dirs_;
  out->next_inode_ = next_inode_;
  return out;
}

std::shared_ptr<crash_disk>
crash_disk::crash_with(const std::function<uint64_t(uint64_t)>& draw) const {
  std::lock_guard<std::mutex> guard(mtx_);
  size_t keep = draw(pending_);
  size_t torn = npos;
  if (keep > 0) {
    auto& last = pending_op(keep - 1);
    if (last.what == kind::append || last.what == kind::write_at)
      torn = draw(last.data.size());
  }
  return crashed_locked(keep, torn);
}

void crash_disk::fail_sync_after(size_t n_syncs, int err) {
  std::lock_guard<std::mutex> guard(mtx_);
  syncs_left_ = n_syncs;
  sync_err_ = err;
}

void crash_disk::set_capacity(uint64_t bytes) {
  std::lock_guard<std::mutex> guard(mtx_);
  capacity_ = bytes;
}

void crash_disk::crash_at_op(size_t n) {
  std::lock_guard<std::mutex> guard(mtx_);
  ops_left_ = n;
  power_off_ = false;
}

bool crash_disk::power_failed() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return power_off_;
}

uint64_t crash_disk::syncs() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return syncs_;
}

uint64_t crash_disk::largest_read() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return largest_read_;
}

uint64_t crash_disk::bytes_written() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return bytes_written_;
}

uint64_t crash_disk::ops() const {
  std::lock_guard<std::mutex> guard(mtx_);
  return ops_;
}

void crash_disk::poke(const std::string& path, std::string content) {
  std::lock_guard<std::mutex> guard(mtx_);
  // A fresh inode: pending writes to the old one must not land on top of the new content.
  op o{kind::set, path, {}, next_inode_++, 0, std::move(content)};
  o.durable = true;
  issue(std::move(o));
}

const crash_disk::op& crash_disk::pending_op(size_t i) const {
  for (auto& o : log_)
    if (!o.durable && i-- == 0)
      return o;
  throw std::out_of_range("crash_disk: no such pending operation");
}

void crash_disk::begin_op() {
  if (power_off_)
    throw crashed_now();
  if (ops_left_ == 0) {
    power_off_ = true;
    throw crashed_now();
  }
  if (ops_left_ != npos)
    --ops_left_;
  ++ops_;
}

bool crash_disk::dir_exists(const std::string& dir) const {
  return dir.empty() || dir == "/" || dirs_.count(dir) > 0;
}

// What open(O_CREAT) would refuse; checked before anything changes.
void crash_disk::check_open(const std::string& path) const {
  if (dirs_.count(norm_dir(path)) > 0)
    throw disk_error("open", path, EISDIR);
  if (current_.names.count(path) == 0 && !dir_exists(parent_of(path)))
    throw disk_error("open", path, ENOENT);
}

bool crash_disk::has_space(uint64_t grown) const {
  if (grown == 0)
    return true;
  uint64_t used = 0;
  for (auto& entry : current_.names)
    used += current_.inodes.at(entry.second).size();
  return used <= capacity_ && grown <= capacity_ - used;
}

void crash_disk::check_space(const std::string& path, uint64_t grown) const {
  if (!has_space(grown))
    throw disk_error("write", path, ENOSPC);
}

uint64_t crash_disk::create_if_missing(const std::string& path) {
  if (auto it = current_.names.find(path); it != current_.names.end())
    return it->second;
  auto inode = next_inode_++;
  issue({kind::create, path, {}, inode, 0, {}});
  return inode;
}

void crash_disk::issue(op o) {
  apply(current_, o, npos);
  if (!o.durable)
    ++pending_;
  log_.push_back(std::move(o));
  compact();
}

// The durable operations at the head of the log come before every pending one, so every crash
// image applies them first: fold them into the base.
void crash_disk::compact() {
  size_t n = 0;
  while (n < log_.size() && log_[n].durable)
    apply(base_, log_[n++], npos);
  log_.erase(log_.begin(), log_.begin() + static_cast<std::ptrdiff_t>(n));
}

} // namespace cafraft::test
