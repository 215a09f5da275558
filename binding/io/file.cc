#include "io/file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace koner::io {
namespace {

std::string Reason() { return std::strerror(errno); }

// Opens a regular file for reading; returns the descriptor and sets *size.
int OpenRegular(const std::string& path, uint64_t* size) {
  // O_NONBLOCK so that opening a FIFO by mistake does not wait for a writer; fstat then rejects it.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) FileError(path, "cannot open (" + Reason() + ")");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const std::string reason = Reason();
    ::close(fd);
    FileError(path, "cannot stat (" + reason + ")");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    FileError(path, S_ISDIR(st.st_mode) ? "is a directory, not a file" : "is not a regular file");
  }
  // Back to blocking reads: regular files never block anyway, but be explicit.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  *size = static_cast<uint64_t>(st.st_size);
  return fd;
}

}  // namespace

void FileError(const std::string& path, const std::string& problem) {
  throw std::runtime_error(path + ": " + problem);
}

InputFile::InputFile(const std::string& path) : path_(path) { fd_ = OpenRegular(path, &size_); }

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

size_t InputFile::ReadSome(uint64_t offset, void* buffer, size_t n) const {
  auto* out = static_cast<char*>(buffer);
  size_t done = 0;
  while (done < n) {
    // Large reads are split: some kernels cap one read at ~2 GB.
    const size_t chunk = std::min<size_t>(n - done, size_t{1} << 30);
    const ssize_t got = ::pread(fd_, out + done, chunk, static_cast<off_t>(offset + done));
    if (got < 0) {
      if (errno == EINTR) continue;
      FileError(path_,
                "read failed at byte " + std::to_string(offset + done) + " (" + Reason() + ")");
    }
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

void InputFile::ReadAt(uint64_t offset, void* buffer, size_t n) const {
  const size_t got = ReadSome(offset, buffer, n);
  if (got != n) {
    FileError(path_, "unexpected end of file at byte " + std::to_string(offset + got) +
                         " (the file is truncated or changed while being read)");
  }
}

MappedFile::MappedFile(const std::string& path) {
  int fd = OpenRegular(path, &size_);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const std::string reason = Reason();
      ::close(fd);
      FileError(path, "cannot map into memory (" + reason + ")");
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid without the descriptor
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

AtomicOutputFile::AtomicOutputFile(const std::string& path) : path_(path) {
  static std::atomic<unsigned> counter{0};
  tmp_ = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) FileError(path, "cannot create " + tmp_ + " (" + Reason() + ")");
}

AtomicOutputFile::~AtomicOutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicOutputFile::Write(const void* data, size_t n) {
  const auto* in = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t put = ::write(fd_, in, std::min<size_t>(n, size_t{1} << 30));
    if (put < 0) {
      if (errno == EINTR) continue;
      FileError(path_, "write failed (" + Reason() + ")");
    }
    in += put;
    n -= static_cast<size_t>(put);
  }
}

void AtomicOutputFile::Commit() {
  if (::fsync(fd_) != 0) FileError(path_, "cannot flush to disk (" + Reason() + ")");
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) FileError(path_, "close failed (" + Reason() + ")");
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    FileError(path_, "cannot rename " + tmp_ + " over it (" + Reason() + ")");
  }
  committed_ = true;
}

}  // namespace koner::io
