// Tensor: a strided view (PyTorch dimension order, outermost first, strides in elements) over a
// reference-counted storage on one device. Views share storage; ops allocate new storage.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "dtype.h"

namespace rt {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);

enum class DeviceType : uint8_t { CPU, CUDA };
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
};
std::string device_str(Device d);

// Raw memory. `owner` keeps foreign memory (an mmap'ed file, a device arena block) alive.
struct Storage {
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  std::shared_ptr<void> owner;
};

class Tensor {
 public:
  Tensor() = default;

  // Uninitialized / zero-filled contiguous CPU tensors.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32);
  static Tensor full(const Shape& shape, float value);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
  static Tensor from_vector_i64(const std::vector<int64_t>& values, const Shape& shape);
  // A contiguous view of memory owned elsewhere; `owner` is held as long as any view lives.
  static Tensor wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner);
  // The same on a device: `data` is device memory that `owner` frees (backends allocate through this).
  static Tensor wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner, Device device);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  Device device() const { return storage_ ? storage_->device : Device{}; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t dim() const { return int64_t(shape_.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape_); }
  int64_t offset() const { return offset_; }
  bool is_contiguous() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype_); }
  std::string str() const;  // "f32[2, 3]"

  // Typed pointer to element 0 of this view. CHECKs the dtype matches T.
  template <typename T> T* data();
  template <typename T> const T* data() const;
  void* raw_data() const;

  // Views (no copy). view() needs a contiguous tensor; -1 infers one dimension.
  Tensor view(const Shape& shape) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end) const;  // [start, end) along dim
  Tensor select(int64_t dim, int64_t index) const;              // drops dim
  Tensor unsqueeze(int64_t dim) const;
  // Splits dim into `sizes` (their product must equal its size); always a view, whatever the strides.
  Tensor unflatten(int64_t dim, const Shape& sizes) const;
  // Numpy-broadcast view to `shape`: leading dims added, size-1 dims stretched with stride 0.
  Tensor expand(const Shape& shape) const;

  // Copies, on the CPU only (device tensors copy through rt::contiguous / rt::cast / rt::to_device,
  // which take the Context that owns the stream). contiguous() returns *this when already contiguous.
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor to(DType dtype) const;  // converting copy (returns *this if dtype matches and contiguous)
  // reshape = view when possible, else contiguous().view()
  Tensor reshape(const Shape& shape) const;

  // Element access for tests and small host-side logic (slow, converts to float; CPU tensors only).
  float at(const std::vector<int64_t>& index) const;
  std::vector<float> to_vector() const;  // any float dtype, any strides, row-major order
  std::vector<int64_t> to_vector_i64() const;

 private:
  std::shared_ptr<Storage> storage_;
  int64_t offset_ = 0;  // in elements
  Shape shape_;
  Shape strides_;
  DType dtype_ = DType::F32;

  int64_t norm_dim(int64_t d, int64_t rank) const;
};

template <typename T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::F32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::I64; }
template <> constexpr DType dtype_of<uint16_t>() { return DType::BF16; }  // also used for F16 via raw_data
template <> constexpr DType dtype_of<uint8_t>() { return DType::F8E4M3; }

template <typename T> T* Tensor::data() {
  DITRUN_CHECK(defined(), "data() on an undefined tensor");
  DITRUN_CHECK(dtype_ == dtype_of<T>() || (dtype_ == DType::F16 && dtype_of<T>() == DType::BF16),
        "dtype mismatch: tensor is ", dtype_name(dtype_), ", asked for ", dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}
template <typename T> const T* Tensor::data() const { return const_cast<Tensor*>(this)->data<T>(); }

Shape contiguous_strides(const Shape& shape);

}  // namespace rt
