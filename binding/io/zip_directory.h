// The central directory of a zip archive: each record's name and sizes, read before any record is
// inflated, so that a record that would inflate past a bound (a zip bomb) is refused unread.
// Zip64 archives (torch.save writes them past 4 GiB) are read too.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "io/file.h"

namespace koner::io {

struct ZipRecord {
  uint16_t method = 0;  // 0 stored, 8 deflated
  uint64_t compressedSize = 0;
  uint64_t uncompressedSize = 0;
};

// Records by their full name. Throws FileError for an archive whose directory is malformed.
std::map<std::string, ZipRecord> ReadZipDirectory(const InputFile& file);

}  // namespace koner::io
