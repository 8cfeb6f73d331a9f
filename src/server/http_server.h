// Moved to src/http/http_server.h (shared by the server and the router): edit it there.
#pragma once
#include "http/http_server.h"
