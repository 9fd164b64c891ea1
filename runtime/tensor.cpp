#include "tensor.h"

#include <cstdlib>
#include <sstream>

namespace rt {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string device_str(Device d) {
  return d.is_cpu() ? "cpu" : "cuda:" + std::to_string(d.index);
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    st[i] = acc;
    acc *= shape[i];
  }
  return st;
}

static std::shared_ptr<Storage> alloc_cpu(size_t bytes) {
  auto st = std::make_shared<Storage>();
  const size_t rounded = ((bytes + 63) / 64) * 64;
  void* p = std::aligned_alloc(64, rounded ? rounded : 64);
  CHECK(p != nullptr, "out of host memory allocating ", bytes, " bytes");
  st->data = p;
  st->bytes = bytes;
  st->owner = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  return st;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  for (int64_t d : shape) CHECK(d >= 0, "negative dimension in ", shape_str(shape));
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.storage_ = alloc_cpu(size_t(shape_numel(shape)) * dtype_size(dtype));
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, float value) {
  Tensor t = empty(shape, DType::F32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = value;
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
  CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(), " values for shape ",
        shape_str(shape));
  Tensor t = empty(shape, DType::F32);
  std::memcpy(t.raw_data(), values.data(), values.size() * 4);
  return t;
}

Tensor Tensor::from_vector_i64(const std::vector<int64_t>& values, const Shape& shape) {
  CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector_i64: ", values.size(),
        " values for shape ", shape_str(shape));
  Tensor t = empty(shape, DType::I64);
  std::memcpy(t.raw_data(), values.data(), values.size() * 8);
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.strides_ = contiguous_strides(shape);
  t.storage_ = std::make_shared<Storage>();
  t.storage_->data = data;
  t.storage_->bytes = size_t(shape_numel(shape)) * dtype_size(dtype);
  t.storage_->owner = std::move(owner);
  return t;
}

Tensor Tensor::wrap(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner, Device device) {
  Tensor t = wrap(data, shape, dtype, std::move(owner));
  t.storage_->device = device;
  return t;
}

int64_t Tensor::norm_dim(int64_t d, int64_t rank) const {
  const int64_t r = d < 0 ? d + rank : d;
  CHECK(r >= 0 && r < rank, "dimension ", d, " out of range for rank ", rank, " tensor ", str());
  return r;
}

int64_t Tensor::size(int64_t d) const { return shape_[size_t(norm_dim(d, dim()))]; }

bool Tensor::is_contiguous() const {
  int64_t acc = 1;
  for (size_t i = shape_.size(); i-- > 0;) {
    if (shape_[i] != 1 && strides_[i] != acc) return false;
    acc *= shape_[i];
  }
  return true;
}

std::string Tensor::str() const { return std::string(dtype_name(dtype_)) + shape_str(shape_); }

void* Tensor::raw_data() const {
  CHECK(defined(), "raw_data() on an undefined tensor");
  return static_cast<char*>(storage_->data) + offset_ * int64_t(dtype_size(dtype_));
}

Tensor Tensor::view(const Shape& shape) const {
  CHECK(is_contiguous(), "view() needs a contiguous tensor, got ", str(), "; call reshape()");
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      CHECK(infer < 0, "view(): more than one -1 in ", shape_str(shape));
      infer = int64_t(i);
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    CHECK(known > 0 && numel() % known == 0, "view(): cannot infer ", shape_str(shape), " from ", str());
    s[size_t(infer)] = numel() / known;
  }
  CHECK(shape_numel(s) == numel(), "view(): ", shape_str(s), " has ", shape_numel(s), " elements, tensor ",
        str(), " has ", numel());
  Tensor t = *this;
  t.shape_ = s;
  t.strides_ = contiguous_strides(s);
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const { return is_contiguous() ? view(shape) : contiguous().view(shape); }

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  CHECK(int64_t(dims.size()) == dim(), "permute(): ", dims.size(), " dims for ", str());
  Tensor t = *this;
  std::vector<bool> seen(dims.size(), false);
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = norm_dim(dims[i], dim());
    CHECK(!seen[size_t(d)], "permute(): repeated dim ", d);
    seen[size_t(d)] = true;
    t.shape_[i] = shape_[size_t(d)];
    t.strides_[i] = strides_[size_t(d)];
  }
  return t;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  a = norm_dim(a, dim());
  b = norm_dim(b, dim());
  Tensor t = *this;
  std::swap(t.shape_[size_t(a)], t.shape_[size_t(b)]);
  std::swap(t.strides_[size_t(a)], t.strides_[size_t(b)]);
  return t;
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end) const {
  d = norm_dim(d, dim());
  CHECK(0 <= start && start <= end && end <= shape_[size_t(d)], "slice(): [", start, ", ", end,
        ") out of range for dim ", d, " of ", str());
  Tensor t = *this;
  t.offset_ += start * strides_[size_t(d)];
  t.shape_[size_t(d)] = end - start;
  return t;
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = norm_dim(d, dim());
  CHECK(0 <= index && index < shape_[size_t(d)], "select(): index ", index, " out of range for dim ", d,
        " of ", str());
  Tensor t = *this;
  t.offset_ += index * strides_[size_t(d)];
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  return t;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = norm_dim(d, dim() + 1);
  Tensor t = *this;
  const int64_t st = d < dim() ? strides_[size_t(d)] * shape_[size_t(d)] : 1;
  t.shape_.insert(t.shape_.begin() + d, 1);
  t.strides_.insert(t.strides_.begin() + d, st);
  return t;
}

Tensor Tensor::unflatten(int64_t d, const Shape& sizes) const {
  d = norm_dim(d, dim());
  CHECK(shape_numel(sizes) == shape_[size_t(d)], "unflatten: ", shape_str(sizes), " does not split dim ", d, " of ", str());
  Tensor t = *this;
  Shape inner_strides(sizes.size());
  int64_t acc = strides_[size_t(d)];
  for (size_t i = sizes.size(); i-- > 0;) {
    inner_strides[i] = acc;
    acc *= sizes[i];
  }
  t.shape_.erase(t.shape_.begin() + d);
  t.strides_.erase(t.strides_.begin() + d);
  t.shape_.insert(t.shape_.begin() + d, sizes.begin(), sizes.end());
  t.strides_.insert(t.strides_.begin() + d, inner_strides.begin(), inner_strides.end());
  return t;
}

Tensor Tensor::expand(const Shape& shape) const {
  CHECK(int64_t(shape.size()) >= dim(), "expand(): ", str(), " to ", shape_str(shape));
  Tensor t = *this;
  while (t.dim() < int64_t(shape.size())) t = t.unsqueeze(0);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (t.shape_[d] == shape[d]) continue;
    CHECK(t.shape_[d] == 1, "expand(): ", str(), " cannot broadcast to ", shape_str(shape));
    t.shape_[d] = shape[d];
    t.strides_[d] = 0;
  }
  return t;
}

// Visits every element of `t` in row-major order, calling f(linear_index, element_offset).
template <typename F>
static void for_each_offset(const Tensor& t, F&& f) {
  const int64_t n = t.numel();
  const int64_t r = t.dim();
  std::vector<int64_t> idx(size_t(r), 0);
  int64_t off = t.offset();
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (int64_t d = r - 1; d >= 0; --d) {
      if (++idx[size_t(d)] < t.shape()[size_t(d)]) {
        off += t.strides()[size_t(d)];
        break;
      }
      off -= (t.shape()[size_t(d)] - 1) * t.strides()[size_t(d)];
      idx[size_t(d)] = 0;
    }
  }
}

static float load_as_float(const void* base, DType dt, int64_t off) {
  switch (dt) {
    case DType::F32: return static_cast<const float*>(base)[off];
    case DType::BF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[off]);
    case DType::F16: return f16_to_f32(static_cast<const uint16_t*>(base)[off]);
    case DType::F8E4M3: return f8e4m3_to_f32(static_cast<const uint8_t*>(base)[off]);
    case DType::I64: return float(static_cast<const int64_t*>(base)[off]);
  }
  return 0.f;
}

static void store_from_float(void* base, DType dt, int64_t off, float v) {
  switch (dt) {
    case DType::F32: static_cast<float*>(base)[off] = v; break;
    case DType::BF16: static_cast<uint16_t*>(base)[off] = f32_to_bf16(v); break;
    case DType::F16: static_cast<uint16_t*>(base)[off] = f32_to_f16(v); break;
    case DType::I64: static_cast<int64_t*>(base)[off] = int64_t(v); break;
    case DType::F8E4M3: static_cast<uint8_t*>(base)[off] = f32_to_f8e4m3(v); break;
  }
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  CHECK(device().is_cpu(), "contiguous() of ", str(), " on ", device_str(device()),
        ": device tensors are copied by rt::contiguous(ctx, t), which owns the stream");
  return clone();
}

Tensor Tensor::clone() const {
  CHECK(defined(), "clone() of an undefined tensor");
  CHECK(device().is_cpu(), "clone() on ", device_str(device()), " needs the device backend");
  Tensor out = empty(shape_, dtype_);
  const size_t es = dtype_size(dtype_);
  const char* src = static_cast<const char*>(storage_->data);
  char* dst = static_cast<char*>(out.raw_data());
  if (is_contiguous()) {
    std::memcpy(dst, src + offset_ * int64_t(es), nbytes());
    return out;
  }
  for_each_offset(*this, [&](int64_t i, int64_t off) { std::memcpy(dst + i * int64_t(es), src + off * int64_t(es), es); });
  return out;
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == dtype_) return contiguous();
  CHECK(device().is_cpu(), "to() on ", device_str(device()), " needs the device backend");
  Tensor out = empty(shape_, dtype);
  void* dst = out.raw_data();
  const void* src = storage_->data;
  if (dtype_ == DType::I64 || dtype == DType::I64) {
    CHECK(dtype_ != DType::I64 || dtype == DType::F32, "i64 converts only to f32");
  }
  for_each_offset(*this, [&](int64_t i, int64_t off) { store_from_float(dst, dtype, i, load_as_float(src, dtype_, off)); });
  return out;
}

float Tensor::at(const std::vector<int64_t>& index) const {
  CHECK(device().is_cpu(), "at() needs a CPU tensor, got one on ", device_str(device()), " (copy it with rt::to_host)");
  CHECK(int64_t(index.size()) == dim(), "at(): ", index.size(), " indices for ", str());
  int64_t off = offset_;
  for (size_t i = 0; i < index.size(); ++i) {
    CHECK(index[i] >= 0 && index[i] < shape_[i], "at(): index out of range for ", str());
    off += index[i] * strides_[i];
  }
  return load_as_float(storage_->data, dtype_, off);
}

std::vector<float> Tensor::to_vector() const {
  CHECK(device().is_cpu(), "to_vector() needs a CPU tensor, got one on ", device_str(device()), " (copy it with rt::to_host)");
  std::vector<float> v(static_cast<size_t>(numel()));
  for_each_offset(*this, [&](int64_t i, int64_t off) { v[size_t(i)] = load_as_float(storage_->data, dtype_, off); });
  return v;
}

std::vector<int64_t> Tensor::to_vector_i64() const {
  CHECK(dtype_ == DType::I64, "to_vector_i64() on ", str());
  CHECK(device().is_cpu(), "to_vector_i64() needs a CPU tensor, got one on ", device_str(device()));
  std::vector<int64_t> v(static_cast<size_t>(numel()));
  const int64_t* p = static_cast<const int64_t*>(storage_->data);
  for_each_offset(*this, [&](int64_t i, int64_t off) { v[size_t(i)] = p[off]; });
  return v;
}

}  // namespace rt
