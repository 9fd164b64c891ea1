// `ditrun batch`: many prompts (a prompts file) to PNGs in one output directory, resumable. The model
// loads once; images of equal settings run as batched passes; out/manifest.jsonl records every image
// with its checksum, so a re-run skips what is done and redoes what is missing or damaged. Everything
// the user can get wrong on the command line is checked before the model loads; a bad line of the
// prompts file, or an image that fails, is reported and the batch goes on.
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "app/batch/chunks.h"
#include "app/batch/jobs.h"
#include "app/batch/manifest.h"
#include "app/batch/prompts_file.h"
#include "app/batch/reporter.h"
#include "app/batch/sha256.h"
#include "app/commands/commands.h"
#include "app/commands/device_options.h"
#include "app/commands/model_options.h"
#include "app/commands/exit_codes.h"
#include "app/io/png_writer.h"
#include "app/pipeline/batch_generate.h"
#include "app/pipeline/flux_pipeline.h"
#include "base/out_of_memory.h"
#include "ops.h"
#include "sparse_attention/methods/method_spec.h"

namespace app {

namespace {

namespace fs = std::filesystem;

struct BatchOptions {
  ModelPathArgs paths;
  std::string prompts, out_dir;
  int batch_size = 1, seeds = 1;
  uint64_t seed = 42;
  GenerateParams flags;  // size, steps, guidance, true CFG, T5 length, VAE tiling; prompt and seed unused
  std::string attention = "dense";
  int dense_steps = 0;
  bool no_fallback = false;  // --no-attention-fallback
  LoadOptions load;
  bool overwrite = false, quiet = false, log_json = false;
  DeviceOptions device;
};

// The SIGINT count of the running batch. A signal handler may only touch lock-free atomics with static
// storage duration (anything else is undefined behaviour inside a handler), so the counter has to be a
// static; InterruptGuard owns it for one run: it resets it, installs the handler and restores the old one.
std::atomic<int> sigint_count{0};
static_assert(std::atomic<int>::is_always_lock_free);

void on_sigint(int) {
  if (sigint_count.fetch_add(1) == 0) {
    static const char msg[] = "\nditrun batch: Ctrl-C: stopping after the current pass (Ctrl-C again to quit now)\n";
    [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
  } else {
    ::_exit(130);  // 128 + SIGINT, as a shell reports a process killed by Ctrl-C
  }
}

class InterruptGuard {
 public:
  InterruptGuard() {
    sigint_count = 0;
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;  // reads and writes in progress (PNG, manifest, events on a pipe) go on
    sigemptyset(&sa.sa_mask);
    installed_ = ::sigaction(SIGINT, &sa, &previous_) == 0;
  }
  ~InterruptGuard() {
    if (installed_) ::sigaction(SIGINT, &previous_, nullptr);
  }
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  bool requested() const { return sigint_count.load() > 0; }

 private:
  struct sigaction previous_ {};
  bool installed_ = false;
};

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "ditrun batch: %s\n", msg.c_str());
  return kExitUsage;
}

int output_error(const std::string& msg) {
  std::fprintf(stderr, "ditrun batch: %s\n", msg.c_str());
  return kExitOutput;
}

// Flags only; the model's defaults are checked the same way after it loads.
int validate(const BatchOptions& o, const GenerateParams& p, bool after_load) {
  if (o.batch_size < 1) return usage_error("--batch-size " + std::to_string(o.batch_size) + " must be >= 1");
  if (o.seeds < 1 || o.seeds > 100000) return usage_error("--seeds " + std::to_string(o.seeds) + " must be in 1..100000");
  for (auto [flag, v] : {std::pair{"--width", p.width}, std::pair{"--height", p.height}}) {
    if (v == 0 && !after_load) continue;  // the model's default
    if (std::string why = image_side_error(flag, v); !why.empty()) return usage_error(why);
  }
  if (p.steps < (after_load ? 1 : 0) || p.steps > 1000) return usage_error("--steps " + std::to_string(p.steps) + " is out of range; use 1..1000");
  if (!(p.guidance >= 0.f || p.guidance == -1.f) || !std::isfinite(p.guidance)) return usage_error("--guidance must be a finite number >= 0");
  if (p.true_cfg && !(*p.true_cfg >= 1.f && std::isfinite(*p.true_cfg))) return usage_error("--true-cfg must be >= 1 (1 disables true CFG)");
  if (p.max_sequence_length < 0 || p.max_sequence_length > 512)
    return usage_error("--max-sequence-length " + std::to_string(p.max_sequence_length) + " is out of range; use 1..512");
  if (p.vae_tile != 0 && (p.vae_tile < 128 || p.vae_tile % 64 != 0))
    return usage_error("--vae-tile " + std::to_string(p.vae_tile) + " must be 0 (off) or a multiple of 64 of at least 128 pixels");
  if (o.dense_steps < 0) return usage_error("--dense-steps " + std::to_string(o.dense_steps) + " must be >= 0");
  if (auto m = sattn::parse_method(o.attention); !m) return usage_error("--attention " + o.attention + ": " + m.status().message());
  return kExitOk;
}

// Creates the output directory and proves a file can be created in it (access() says yes to root even
// on a read-only mount).
rt::Status prepare_out_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return rt::Status::error("cannot create output directory " + dir + ": " + ec.message());
  if (!fs::is_directory(dir, ec)) return rt::Status::error("output directory " + dir + " is not a directory");
  const std::string probe = (fs::path(dir) / (".ditrun-write-test-" + std::to_string(::getpid()))).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return rt::Status::error("output directory " + dir + " is not writable: " + std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
  return rt::Status::ok();
}

// Temp files a killed earlier run left beside one of this batch's outputs (png_writer's "<name>.tmp-<pid>").
void remove_stale_temps(const std::string& dir, const std::vector<Job>& jobs, const std::vector<size_t>& todo) {
  std::map<std::string, bool> outputs;
  for (size_t j : todo) outputs[jobs[j].output] = true;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t at = name.rfind(".tmp-");
    if (at == std::string::npos || !outputs.count(name.substr(0, at))) continue;
    const std::string pid = name.substr(at + 5);
    if (!pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos) fs::remove(entry.path(), ec);
  }
}

// The PNG "parameters" text, in `ditrun generate`'s format.
std::string png_parameters(const GenerateParams& p, const std::string& model) {
  std::ostringstream os;
  os << "prompt: " << p.prompt;
  if (p.runs_true_cfg()) os << "\nnegative_prompt: " << *p.negative_prompt;
  os << "\nwidth: " << p.width << "\nheight: " << p.height << "\nsteps: " << p.steps << "\nguidance: " << p.guidance
     << "\ntrue_cfg: " << (p.runs_true_cfg() ? *p.true_cfg : 1.f) << "\nseed: " << p.seed
     << "\nmax_sequence_length: " << p.max_sequence_length << "\nmodel: " << model;
  if (!p.attention.method.is_dense()) os << "\nattention: " << p.attention.describe();
  return os.str();
}

class BatchRun {
 public:
  BatchRun(const BatchOptions& o, const rt::Context& ctx, const FluxPipeline& pipe, Manifest& manifest,
           BatchReporter& reporter)
      : o_(o), ctx_(ctx), pipe_(pipe), manifest_(manifest), reporter_(reporter),
        cache_(size_t(std::max(64, 4 * o.batch_size))) {}

  ~BatchRun() {
    if (writes_.valid()) writes_.wait();  // on an exception's way out: its own error, if any, is lost
  }

  // Returns the exit code.
  int run(const ExpandedBatch& batch);

 private:
  void fail(const Job& job, const std::string& message);
  void run_chunk(const GenerateParams& shared, const std::vector<size_t>& chunk);
  // One image's PNG file and its checksum, or why there is none (`fatal`: the batch cannot go on).
  struct Written {
    std::string path;
    rt::Result<std::string> sum;
    bool fatal;
  };
  Written write_file(const Job& job, const GenerateParams& shared, const rt::Tensor& image) const;
  void commit(const Job& job, const Written& w, double seconds, int batch_size);
  void write_pass(const GenerateParams& shared, const std::vector<size_t>& chunk, const std::vector<rt::Tensor>& images,
                  double seconds);
  void record(const nlohmann::json& rec);
  void set_fatal(const std::string& message);
  bool has_fatal();
  bool stopped();
  void finish_writes();

  const BatchOptions& o_;
  const rt::Context& ctx_;
  const FluxPipeline& pipe_;
  Manifest& manifest_;
  BatchReporter& reporter_;
  TextEmbeddingCache cache_;
  InterruptGuard interrupt_;
  std::vector<Job> jobs_;
  std::vector<bool> replace_;  // overwrite the job's file (recorded but damaged, or --overwrite)
  std::string fatal_;          // a write failure that stops the batch
  // A pass's PNGs are encoded, written, checksummed and recorded on a background task while the next
  // pass runs: encoding a 1024x1024 PNG takes ~0.5 s of host time, a third of a batch-1 pass on an H200
  // (bench/batch_h200.sh). `mu_` guards what both threads touch: reporter_, manifest_ and fatal_.
  std::future<void> writes_;
  std::mutex mu_;
};

void BatchRun::record(const nlohmann::json& rec) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fatal_.empty()) return;
  if (auto st = manifest_.append(rec); !st) fatal_ = st.message();
}

void BatchRun::fail(const Job& job, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    reporter_.image_error(job.line, &job, message);
  }
  record(error_record(job.line, message, &job));
}

void BatchRun::set_fatal(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  if (fatal_.empty()) fatal_ = message;
}

bool BatchRun::has_fatal() {
  std::lock_guard<std::mutex> lock(mu_);
  return !fatal_.empty();
}

bool BatchRun::stopped() { return interrupt_.requested() || has_fatal(); }

void BatchRun::finish_writes() {
  if (writes_.valid()) writes_.get();
}

BatchRun::Written BatchRun::write_file(const Job& job, const GenerateParams& shared, const rt::Tensor& image) const {
  const std::string path = (fs::path(o_.out_dir) / job.output).string();
  const size_t j = size_t(&job - jobs_.data());
  std::error_code ec;
  if (!replace_[j] && fs::exists(path, ec))
    return {path, rt::Status::error(path + " appeared during the batch; not overwriting it (--overwrite)"), false};
  GenerateParams p = shared;
  p.prompt = job.prompt;
  p.seed = job.seed;
  const PngText text = {{"parameters", png_parameters(p, job.settings.model)}, {"Software", "ditrun 0.1.0"}};
  if (auto st = write_png(path, image, text, /*overwrite=*/true); !st) return {path, st, true};
  auto sum = sha256_file(path);
  const bool fatal = !sum;
  return {path, std::move(sum), fatal};
}

void BatchRun::commit(const Job& job, const Written& w, double seconds, int batch_size) {
  if (!w.sum) {
    fail(job, w.sum.status().message());
    if (w.fatal) set_fatal(w.sum.status().message());
    return;
  }
  record(ok_record(job, *w.sum, seconds, batch_size));
  std::lock_guard<std::mutex> lock(mu_);
  // An image the manifest does not hold would look like a stranger's file to the next run: remove it.
  if (!fatal_.empty()) {
    std::error_code ec;
    fs::remove(w.path, ec);
    reporter_.image_error(job.line, &job, "not recorded (" + fatal_ + "); image removed");
    return;
  }
  reporter_.image_done(job, w.path, *w.sum, seconds);
}

void BatchRun::write_pass(const GenerateParams& shared, const std::vector<size_t>& chunk,
                          const std::vector<rt::Tensor>& images, double seconds) {
  // Encoding is the slow part and each image has its own file, so a pass's images are encoded on several
  // threads; the manifest and the reporter then take them in pass order.
  const size_t n = chunk.size();
  std::vector<std::optional<Written>> done(n);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t k; (k = next++) < n && !has_fatal();) done[k] = write_file(jobs_[chunk[k]], shared, images[k]);
  };
  const size_t threads = std::min<size_t>(n, std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
  // An image without a result was never written: the batch stopped on an earlier failure.
  for (size_t k = 0; k < n; ++k)
    if (done[k]) commit(jobs_[chunk[k]], *done[k], seconds, int(n));
}

void BatchRun::run_chunk(const GenerateParams& shared, const std::vector<size_t>& chunk) {
  std::vector<BatchImage> images;
  for (size_t j : chunk) images.push_back({jobs_[j].prompt, jobs_[j].seed});
  const auto t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    reporter_.pass_start(int(chunk.size()));
  }
  // The host queues a GPU pass far ahead of the device (graph replays, no reads until the decode), so each
  // stage is reported once the device got there; a step is long enough that the wait costs nothing.
  const ProgressFn progress = [&](const char* stage, int i, int n) {
    rt::synchronize(ctx_);
    std::lock_guard<std::mutex> lock(mu_);
    reporter_.stage(stage, i, n);
  };
  auto out = pipe_.generate_batch(ctx_, shared, images, &cache_, progress);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / double(chunk.size());
  finish_writes();  // the previous pass's images: one writer at a time keeps the manifest in pass order
  if (!out) {
    for (size_t j : chunk) fail(jobs_[j], out.status().message());
    return;
  }
  // `shared` and `chunk` belong to the caller's loop: the task keeps copies. A Ctrl-C still lets the pass's
  // images be written (they are done); only a write failure stops the rest.
  writes_ = std::async(std::launch::async, [this, shared, chunk, images = std::move(*out), seconds] {
    write_pass(shared, chunk, images, seconds);
  });
}

int BatchRun::run(const ExpandedBatch& batch) {
  jobs_ = batch.jobs;
  replace_.assign(jobs_.size(), false);
  BatchTotals totals;
  totals.images = int(jobs_.size());
  totals.bad_lines = int(batch.errors.size());
  totals.duplicates = batch.duplicates;
  std::vector<size_t> todo;
  std::vector<std::pair<size_t, std::string>> refused;
  for (size_t j = 0; j < jobs_.size(); ++j) {
    const Job& job = jobs_[j];
    auto method = sattn::parse_method(job.settings.attention);
    std::string why = method ? dit::flux::attention_fit_error(*method, job.settings.width, job.settings.height,
                                                             job.settings.max_sequence_length)
                             : method.status().message();
    if (!why.empty()) {
      refused.push_back({j, "attention " + job.settings.attention + ": " + why});
      continue;
    }
    const ResumeDecision d = decide_resume(job, o_.out_dir, manifest_, o_.overwrite);
    switch (d.action) {
      case ResumeAction::Skip: ++totals.skipped; continue;
      case ResumeAction::Conflict: refused.push_back({j, d.why}); continue;
      case ResumeAction::Regenerate: reporter_.note(d.why + ": generating it again"); [[fallthrough]];
      case ResumeAction::Replace: replace_[j] = true; break;
      case ResumeAction::Generate: break;
    }
    todo.push_back(j);
  }
  remove_stale_temps(o_.out_dir, jobs_, todo);
  const auto groups = group_jobs(jobs_, todo);
  totals.to_run = int(todo.size() + refused.size());
  totals.groups = int(groups.size());
  reporter_.start(totals, o_.out_dir);
  for (const ItemError& e : batch.errors) {
    reporter_.image_error(e.line, nullptr, e.message);
    if (!manifest_.has_line_error(e.line, e.message)) record(error_record(e.line, e.message));
  }
  for (const auto& [j, why] : refused) fail(jobs_[j], why);

  size_t not_run = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const JobSettings& settings = jobs_[groups[g].front()].settings;
    GenerateParams shared = settings.params("", 0);
    shared.cuda_graph = o_.device.cuda_graph;
    shared.attention.method = *sattn::parse_method(settings.attention);
    shared.attention.dense_steps = settings.dense_steps;
    shared.attention.fallback = settings.attention_fallback;
    if (stopped()) {
      not_run += groups[g].size();
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      reporter_.group_start(int(g + 1), settings, int(groups[g].size()));
    }
    int batch_size = o_.batch_size;
    ChunkCallbacks cb;
    cb.run = [&](const std::vector<size_t>& chunk) { run_chunk(shared, chunk); };
    cb.out_of_memory = [&](size_t j, const std::string& what) { fail(jobs_[j], "out of memory at batch size 1: " + what); };
    cb.shrink = [&](int from, int to, const std::string& what) {
      std::lock_guard<std::mutex> lock(mu_);
      reporter_.note("out of memory at batch size " + std::to_string(from) + " (" + what + "); retrying with " +
                     std::to_string(to));
    };
    cb.stop = [&] { return stopped(); };
    not_run += run_in_chunks(groups[g], &batch_size, cb);
    finish_writes();  // the group's report counts its last pass's images
    reporter_.group_done();
  }
  finish_writes();
  const bool interrupted = interrupt_.requested();
  const int rc = !fatal_.empty() ? kExitOutput
                 : (interrupted || reporter_.errors() > 0 || !batch.errors.empty() || not_run > 0) ? kExitFailure
                                                                                                 : kExitOk;
  reporter_.finished(interrupted, fatal_, rc);
  return rc;
}

// The model as the user named it: part of every image's recorded parameters.
std::string model_name(const ModelPathArgs& a) {
  if (!a.model.empty()) return a.model;
  if (!a.transformer.empty()) return a.transformer;
  return "embedded:ditrun-shapes";
}

int run_batch(const BatchOptions& o) {
  if (int rc = validate(o, o.flags, false); rc != kExitOk) return rc;
  auto items = read_prompts_file(o.prompts);
  if (!items) return usage_error(items.status().message());
  if (auto st = prepare_out_dir(o.out_dir); !st) return output_error(st.message());
  auto manifest = Manifest::open((fs::path(o.out_dir) / "manifest.jsonl").string());
  if (!manifest) return output_error(manifest.status().message());
  auto paths = resolve_model_paths(o.paths);
  if (!paths) {
    std::fprintf(stderr, "ditrun batch: %s\n", paths.status().message().c_str());
    return kExitModel;
  }
  auto made = make_context(o.device, o.quiet ? rt::LogLevel::Quiet : rt::LogLevel::Info);
  if (!made) return usage_error(made.status().message());
  const rt::Context& ctx = made.value();
  if (!o.quiet) std::fprintf(stderr, "ditrun batch: loading %s\n", model_name(o.paths).c_str());
  auto pipe = FluxPipeline::load(ctx, *paths, o.load);
  if (!pipe) {
    std::fprintf(stderr, "ditrun batch: %s\n", pipe.status().message().c_str());
    return kExitModel;
  }
  const GenerateParams d = (*pipe)->with_defaults(o.flags);
  if (int rc = validate(o, d, true); rc != kExitOk) return rc;
  BatchReporter reporter(o.quiet, o.log_json, isatty(fileno(stderr)) != 0);
  char loaded[64];
  std::snprintf(loaded, sizeof loaded, "; loaded in %.2f s", (*pipe)->load_report().seconds);
  reporter.note((*pipe)->describe() + loaded);
  for (const ComponentLoad& c : (*pipe)->load_report().components) reporter.note(describe_load(c));
  if (manifest->unreadable_lines() > 0)
    reporter.note(manifest->path() + ": " + std::to_string(manifest->unreadable_lines()) + " unreadable line(s) ignored");
  JobSettings base;
  base.width = d.width;
  base.height = d.height;
  base.steps = d.steps;
  base.guidance = d.guidance;
  base.true_cfg = d.true_cfg.value_or(1.f);
  base.negative_prompt = d.negative_prompt;
  base.max_sequence_length = d.max_sequence_length;
  base.attention = sattn::method_str(*sattn::parse_method(o.attention));
  base.dense_steps = o.dense_steps;
  base.attention_fallback = !o.no_fallback;
  base.vae_tile = d.vae_tile;
  base.model = model_name(o.paths);
  const ExpandedBatch batch = expand_jobs(*items, base, o.seed, o.seeds);
  try {
    BatchRun run(o, ctx, **pipe, *manifest, reporter);
    return run.run(batch);
  } catch (const rt::OutOfMemory& e) {
    std::fprintf(stderr, "ditrun batch: %s\n", e.what());
    return kExitFailure;
  }
}

}  // namespace

Command add_batch_command(CLI::App& root) {
  auto o = std::make_shared<BatchOptions>();
  CLI::App* c = root.add_subcommand("batch", "Generate many images from a prompts file, resumably");
  add_model_options(*c, o->paths);
  c->add_option("--prompts", o->prompts,
                "Prompts file: one prompt per line, or a JSON object per line with \"prompt\" and any of negative_prompt, "
                "width, height, steps, guidance, seed, attention, dense_steps, name")
      ->required();
  c->add_option("--out-dir", o->out_dir, "Output directory (created if needed); holds the PNGs and manifest.jsonl")->required();
  c->add_option("--batch-size", o->batch_size, "Images per batched pass (halved on out-of-memory)")->capture_default_str();
  c->add_option("--seeds", o->seeds, "Images per prompt, with seeds seed..seed+N-1")->capture_default_str();
  c->add_option("-s,--seed", o->seed, "First seed of items without their own \"seed\"")->capture_default_str();
  c->add_option("-n,--negative-prompt", o->flags.negative_prompt, "Negative prompt for --true-cfg > 1 (items may override)");
  c->add_option("--true-cfg", o->flags.true_cfg, "True classifier-free guidance scale (1 = off; default: the model's)");
  c->add_option("-W,--width", o->flags.width, "Image width, multiple of 16 (default: the model's)");
  c->add_option("-H,--height", o->flags.height, "Image height, multiple of 16 (default: the model's)");
  c->add_option("--steps", o->flags.steps, "Denoising steps (default: the model's)");
  c->add_option("-g,--guidance", o->flags.guidance, "Embedded guidance scale (default: the model's)");
  c->add_option("--max-sequence-length", o->flags.max_sequence_length, "T5 tokens (default: the model's)");
  c->add_option("--vae-tile", o->flags.vae_tile, "Decode in overlapping tiles of this many pixels (0 = whole image)");
  c->add_option("--attention", o->attention, "Transformer attention method (as for generate; items may override)")
      ->capture_default_str();
  c->add_option("--dense-steps", o->dense_steps, "With a sparse --attention: run the first N steps dense")->capture_default_str();
  c->add_flag("--no-attention-fallback", o->no_fallback,
              "Run sparse methods even where they cannot beat dense attention (as for generate: by default those "
              "calls run dense, with one line on stderr saying why)");
  c->add_flag("--overwrite", o->overwrite,
              "Replace existing files that are not this batch's recorded results (recorded, intact images are still skipped)");
  c->add_flag("-q,--quiet", o->quiet, "No progress on stderr (errors are still printed)");
  c->add_flag("--log-json", o->log_json,
              "One JSON event per line on stdout: start, stage (encode, each denoise step, decode of every pass), "
              "image_done, image_error, group_done, finished");
  c->add_flag("--offload", o->load.offload, "Keep only the component in use on the device (reloads them every pass)");
  add_device_options(*c, o->device);
  return {c, [o] { return run_batch(*o); }};
}

}  // namespace app
