// Moved to src/common/metrics_registry.h (shared by the server and the router): edit it there.
#pragma once
#include "common/metrics_registry.h"
