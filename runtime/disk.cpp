#include <cafraft/runtime/disk.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace cafraft {

disk_error::disk_error(std::string op, std::string path, int err)
    : std::runtime_error(op + " " + path + ": " + std::strerror(err)), op_(std::move(op)),
      path_(std::move(path)), code_(err) {}

bool disk_error::no_space() const {
  return code_ == ENOSPC || code_ == EDQUOT;
}

dir_lock::~dir_lock() = default;
file_reader::~file_reader() = default;

disk::~disk() = default;

namespace {

std::string parent_of(const std::string& path) {
  auto i = path.rfind('/');
  if (i == std::string::npos)
    return ".";
  return i == 0 ? "/" : path.substr(0, i);
}

std::string pread_all(int fd, const std::string& path, uint64_t offset, size_t len) {
  std::string out(len, '\0');
  size_t got = 0;
  while (got < len) {
    auto n = ::pread(fd, out.data() + got, len - got, static_cast<off_t>(offset + got));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw disk_error("read", path, errno);
    }
    if (n == 0)
      break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

class posix_lock : public dir_lock {
public:
  explicit posix_lock(int fd) : fd_(fd) {}
  ~posix_lock() override { ::close(fd_); } // closing releases the flock

private:
  int fd_;
};

class posix_reader : public file_reader {
public:
  posix_reader(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~posix_reader() override { ::close(fd_); }
  std::string read_at(uint64_t offset, size_t len) override {
    return pread_all(fd_, path_, offset, len);
  }

private:
  int fd_;
  std::string path_;
};

class posix_disk : public disk {
public:
  ~posix_disk() override {
    for (auto& [path, fd] : fds_)
      ::close(fd);
  }

  void make_dirs(const std::string& path) override {
    if (path.empty() || exists(path))
      return;
    make_dirs(parent_of(path));
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
      throw disk_error("mkdir", path, errno);
    sync_dir(parent_of(path));
  }

  bool exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  std::vector<std::string> list(const std::string& dir) override {
    std::vector<std::string> out;
    auto d = ::opendir(dir.c_str());
    if (!d)
      throw disk_error("opendir", dir, errno);
    while (auto e = ::readdir(d)) {
      std::string name = e->d_name;
      struct stat st;
      if (::stat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode))
        out.push_back(std::move(name));
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string read(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw disk_error("open", path, errno);
    std::string out;
    char buf[1 << 16];
    for (;;) {
      auto n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        int err = errno;
        ::close(fd);
        throw disk_error("read", path, err);
      }
      if (n == 0)
        break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
  }

  std::string read_at(const std::string& path, uint64_t offset, size_t len) override {
    return pread_all(open_fd(path), path, offset, len);
  }

  std::unique_ptr<file_reader> open_reader(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw disk_error("open", path, errno);
    return std::make_unique<posix_reader>(fd, path);
  }

  void append(const std::string& path, std::string_view data) override {
    int fd = open_fd(path);
    auto end = ::lseek(fd, 0, SEEK_END);
    if (end < 0)
      throw disk_error("lseek", path, errno);
    write_all(fd, path, static_cast<uint64_t>(end), data);
  }

  void write_at(const std::string& path, uint64_t offset, std::string_view data) override {
    write_all(open_fd(path), path, offset, data);
  }

  void sync(const std::string& path) override {
    if (::fdatasync(open_fd(path)) != 0)
      throw disk_error("fdatasync", path, errno);
  }

  void truncate(const std::string& path, uint64_t size) override {
    if (::ftruncate(open_fd(path), static_cast<off_t>(size)) != 0)
      throw disk_error("ftruncate", path, errno);
  }

  bool preallocate(const std::string& path, uint64_t size) override {
    int fd = open_fd(path);
    int rc;
    do
      rc = ::fallocate(fd, 0, 0, static_cast<off_t>(size));
    while (rc != 0 && errno == EINTR);
    if (rc == 0)
      return true;
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == ENOSPC || errno == EDQUOT)
      return false;
    throw disk_error("fallocate", path, errno);
  }

  void rename(const std::string& from, const std::string& to) override {
    close_fd(from);
    close_fd(to);
    if (::rename(from.c_str(), to.c_str()) != 0)
      throw disk_error("rename", from, errno);
  }

  void remove(const std::string& path) override {
    close_fd(path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw disk_error("unlink", path, errno);
  }

  void sync_dir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
      throw disk_error("open", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0)
      throw disk_error("fsync", dir, err);
  }

  std::unique_ptr<dir_lock> lock(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw disk_error("open", path, errno);
    // flock locks belong to the open file description, so a second open in this process
    // conflicts too, as it must.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      throw disk_error("lock", path, err);
    }
    return std::make_unique<posix_lock>(fd);
  }

private:
  int open_fd(const std::string& path) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = fds_.find(path);
    if (i != fds_.end())
      return i->second;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      throw disk_error("open", path, errno);
    fds_.emplace(path, fd);
    return fd;
  }

  void close_fd(const std::string& path) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = fds_.find(path);
    if (i != fds_.end()) {
      ::close(i->second);
      fds_.erase(i);
    }
  }

  static void write_all(int fd, const std::string& path, uint64_t offset, std::string_view data) {
    while (!data.empty()) {
      auto n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR)
          continue;
        throw disk_error("write", path, errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
      offset += static_cast<uint64_t>(n);
    }
  }

  std::mutex mtx_;
  std::map<std::string, int> fds_;
};

} // namespace

std::shared_ptr<disk> make_posix_disk() {
  return std::make_shared<posix_disk>();
}

} // namespace cafraft
