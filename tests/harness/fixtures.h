// Parity-fixture helpers shared by the model tests: listing a module's fixtures, loading one,
// checking a runner's outputs against it, and rewriting its weights as a modified checkpoint.
// Failures are reported through Catch2 (REQUIRE / CHECK), so call these from inside a TEST_CASE.
#pragma once
#include <functional>
#include <string>
#include <vector>

#if DITRUN_WITH_OPENCV
#include "app/evaluate/world_spec.h"
#endif
#include "app/parity/fixture.h"
#include "harness/safetensors_writer.h"
#include "weights/store.h"

namespace test {

#if DITRUN_WITH_OPENCV
// tools/world/spec.json, loaded once (REQUIREs it loads). Only in builds with the evaluator (OpenCV).
const app::eval::WorldSpec& world_spec();
#endif

// The parity fixtures of `module` (DITRUN_FIXTURES_DIR/parity/<module>_*.safetensors), sorted; empty
// when there are none.
std::vector<std::string> parity_fixtures(const std::string& module);

// Loads a fixture; REQUIREs that it loads.
app::ParityFixture load_fixture(const std::string& path);

// Every output `f` expects is in `got` (REQUIRE), finite where the reference is finite, and within the
// fixture's relative-L2 tolerance.
void check_outputs_match(const app::ParityFixture& f, const app::ParityOutputs& got);

// Runs `module`'s parity runner on each of its fixtures (at least one) and checks the outputs.
void check_parity_fixtures(const std::string& module);

// A copy of `src` as a fresh checkpoint file, reopened: every tensor renamed to `prefix` + its name,
// then `edit` applied to the list.
using TensorEdit = std::function<void(std::vector<StTensor>&)>;
weights::TensorStore rewritten(const weights::TensorStore& src, const TensorEdit& edit, const std::string& prefix = "");
// The same without the tensor `drop` (its name in `src`; none when empty) and with `extra` appended.
weights::TensorStore rewritten(const weights::TensorStore& src, const std::string& drop,
                               const std::vector<StTensor>& extra = {}, const std::string& prefix = "");

}  // namespace test
