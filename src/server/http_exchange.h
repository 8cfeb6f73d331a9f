// Moved to src/http/http_exchange.h (shared by the server and the router): edit it there.
#pragma once
#include "http/http_exchange.h"
