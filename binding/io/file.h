// POSIX file access for the weight readers and writers: errors carry the path and the OS reason,
// only regular files are opened (a FIFO or a device would block a reader forever), and output
// goes to a temporary file that replaces the target only once it is complete.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace koner::io {

// Throws std::runtime_error("<path>: <problem>").
[[noreturn]] void FileError(const std::string& path, const std::string& problem);

class InputFile {
 public:
  explicit InputFile(const std::string& path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }
  // Reads exactly n bytes at offset; a short read is an error (the file changed or is truncated).
  void ReadAt(uint64_t offset, void* buffer, size_t n) const;
  // Reads up to n bytes at offset (fewer at the end of the file); returns the count.
  size_t ReadSome(uint64_t offset, void* buffer, size_t n) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// A read-only memory map of a whole regular file (empty files map to no memory).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// Writes `<path>.tmp-<pid>-<n>` and renames it over `path` on Commit(); the temporary file is
// removed if the writer is destroyed before Commit() (an exception while writing).
class AtomicOutputFile {
 public:
  explicit AtomicOutputFile(const std::string& path);
  ~AtomicOutputFile();
  AtomicOutputFile(const AtomicOutputFile&) = delete;
  AtomicOutputFile& operator=(const AtomicOutputFile&) = delete;

  void Write(const void* data, size_t n);
  // Flushes to disk, closes and renames over the target.
  void Commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace koner::io
