#include "io/zip_directory.h"

#include <algorithm>
#include <vector>

namespace koner::io {
namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;

uint64_t Le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::vector<uint8_t> Read(const InputFile& file, uint64_t offset, uint64_t n) {
  if (offset > file.size() || n > file.size() - offset) {
    FileError(file.path(), "zip directory points past the end of the file");
  }
  std::vector<uint8_t> bytes(n);
  if (n > 0) file.ReadAt(offset, bytes.data(), n);
  return bytes;
}

}  // namespace

std::map<std::string, ZipRecord> ReadZipDirectory(const InputFile& file) {
  const std::string& path = file.path();
  // The end-of-directory record: 22 bytes plus a comment of up to 65,535, at the very end.
  const uint64_t tail = std::min<uint64_t>(file.size(), 22 + 65535);
  const std::vector<uint8_t> end = Read(file, file.size() - tail, tail);
  int64_t at = -1;
  for (int64_t i = static_cast<int64_t>(tail) - 22; i >= 0; --i) {
    if (Le(&end[i], 4) == kEndOfDirectory) {
      at = i;
      break;
    }
  }
  if (at < 0) FileError(path, "not a zip archive (no end-of-directory record)");
  uint64_t count = Le(&end[at + 10], 2);
  uint64_t size = Le(&end[at + 12], 4);
  uint64_t offset = Le(&end[at + 16], 4);
  if (count == 0xffff || size == 0xffffffff || offset == 0xffffffff) {
    const uint64_t locator = file.size() - tail + at;
    if (locator < 20) FileError(path, "zip64 archive without its locator");
    const auto loc = Read(file, locator - 20, 20);
    if (Le(&loc[0], 4) != kZip64Locator) FileError(path, "zip64 archive without its locator");
    const auto end64 = Read(file, Le(&loc[8], 8), 56);
    if (Le(&end64[0], 4) != kZip64EndOfDirectory) {
      FileError(path, "zip64 end-of-directory record is missing");
    }
    count = Le(&end64[32], 8);
    size = Le(&end64[40], 8);
    offset = Le(&end64[48], 8);
  }
  const std::vector<uint8_t> dir = Read(file, offset, size);
  std::map<std::string, ZipRecord> records;
  uint64_t p = 0;
  for (uint64_t i = 0; i < count; ++i) {
    if (size - p < 46 || Le(&dir[p], 4) != kDirectoryEntry) {
      FileError(path, "zip directory entry " + std::to_string(i) + " is malformed");
    }
    ZipRecord r;
    r.method = static_cast<uint16_t>(Le(&dir[p + 10], 2));
    r.compressedSize = Le(&dir[p + 20], 4);
    r.uncompressedSize = Le(&dir[p + 24], 4);
    const uint64_t nameLength = Le(&dir[p + 28], 2), extraLength = Le(&dir[p + 30], 2),
                   commentLength = Le(&dir[p + 32], 2);
    if (size - p - 46 < nameLength + extraLength + commentLength) {
      FileError(path, "zip directory entry " + std::to_string(i) + " runs past the directory");
    }
    std::string name(reinterpret_cast<const char*>(&dir[p + 46]), nameLength);
    // Zip64 sizes: the extra field 0x0001 holds the 64-bit values of the fields marked 0xffffffff,
    // uncompressed first.
    for (uint64_t e = p + 46 + nameLength; e + 4 <= p + 46 + nameLength + extraLength;) {
      const uint64_t id = Le(&dir[e], 2), length = Le(&dir[e + 2], 2);
      if (e + 4 + length > p + 46 + nameLength + extraLength) break;
      if (id == 0x0001) {
        uint64_t q = e + 4;
        if (r.uncompressedSize == 0xffffffff && q + 8 <= e + 4 + length) {
          r.uncompressedSize = Le(&dir[q], 8);
          q += 8;
        }
        if (r.compressedSize == 0xffffffff && q + 8 <= e + 4 + length) {
          r.compressedSize = Le(&dir[q], 8);
        }
      }
      e += 4 + length;
    }
    records[name] = r;
    p += 46 + nameLength + extraLength + commentLength;
  }
  return records;
}

}  // namespace koner::io
