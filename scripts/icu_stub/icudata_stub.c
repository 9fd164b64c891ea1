/* A stand-in for libicudata.so.72 on the GPU machine (scripts/device_bundle.sh builds it): an ICU common-data
 * package whose table of contents is empty. ditrun uses ICU only for NFC and character classes, whose tables
 * are compiled into libicuuc, so the 31 MB data library (7 MB compressed) need not travel; the CLIP tokenizer
 * tests, NFC included, pass against it. The layout is ICU's data header (udata.h: MappedData + UDataInfo,
 * 8 bytes of padding to a 32-byte header) followed by the package's entry count, a reserved word and the
 * (here empty) entries. */
#include <stdint.h>

struct toc_entry {
  uint32_t name_offset, data_offset;
};

struct common_data {
  uint16_t header_size;
  uint8_t magic1, magic2;
  uint16_t info_size, info_reserved;
  uint8_t big_endian, charset_family, sizeof_uchar, info_reserved_byte;
  uint8_t data_format[4], format_version[4], data_version[4];
  uint8_t padding[8];
  uint32_t count, reserved;
  struct toc_entry toc[1];
};

__attribute__((visibility("default"))) const struct common_data icudt72_dat = {
    32, 0xda, 0x27,             /* header size, magic */
    20, 0, 0, 0, 2, 0,          /* sizeof(UDataInfo), little endian, ASCII family, 2-byte UChar */
    {'C', 'm', 'n', 'D'},       /* common data */
    {1, 0, 0, 0}, {0, 0, 0, 0}, /* format version 1 */
    {0},                        /* padding */
    0, 0, {{0, 0}}};
