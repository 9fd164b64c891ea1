// Expected failures (bad files, bad arguments, missing devices) travel up to app/ as Status or
// Result<T>. Messages say what failed, expected vs got, and what to do.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "base/check.h"

namespace rt {

class Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string msg) {
    Status s;
    s.msg_ = std::move(msg);
    s.failed_ = true;
    return s;
  }
  bool is_ok() const { return !failed_; }
  explicit operator bool() const { return is_ok(); }
  const std::string& message() const { return msg_; }
  // Prefixes context ("loading transformer: ") to an error message.
  Status with_context(const std::string& ctx) const {
    return failed_ ? error(ctx + msg_) : *this;
  }

 private:
  std::string msg_;
  bool failed_ = false;
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status s) : v_(std::move(s)) { DITRUN_CHECK(!std::get<Status>(v_).is_ok(), "Result built from an ok Status"); }
  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { DITRUN_CHECK(is_ok(), "value() on an error Result: ", std::get<Status>(v_).message()); return std::get<T>(v_); }
  T&& value() && { DITRUN_CHECK(is_ok(), "value() on an error Result: ", std::get<Status>(v_).message()); return std::get<T>(std::move(v_)); }
  const T& value() const& { DITRUN_CHECK(is_ok(), "value() on an error Result: ", std::get<Status>(v_).message()); return std::get<T>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace rt

// Returns early from a function returning Status/Result when expr is an error.
#define RT_TRY(expr)                          \
  do {                                        \
    ::rt::Status _st = (expr);                \
    if (!_st.is_ok()) return _st;             \
  } while (0)

#define RT_CONCAT_INNER(a, b) a##b
#define RT_CONCAT(a, b) RT_CONCAT_INNER(a, b)
// RT_ASSIGN(auto x, result_expr): assigns the value or returns the error.
#define RT_ASSIGN(decl, expr) RT_ASSIGN_IMPL(RT_CONCAT(_res_, __LINE__), decl, expr)
#define RT_ASSIGN_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                    \
  if (!tmp.is_ok()) return tmp.status(); \
  decl = std::move(tmp).value()
