#include "instance/instance.h"

#include <signal.h>
#include <unistd.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <thread>

#include "common/json.h"
#include "common/log.h"
#include "server/tool_call_parser.h"

namespace baton::instance {

namespace {

// tool_call_parser: a format by name, or (auto) the one the model's chat
// template (tokenizer_config.json or chat_template.jinja) asks for.
Result<ToolCallFormat> resolve_tool_call_parser(const std::string& name, const std::string& model_dir) {
  if (name != "auto") return parse_tool_call_format(name);
  std::string source;
  if (auto jinja = read_file(model_dir + "/chat_template.jinja"); jinja.is_ok()) source = *jinja;
  if (auto config = read_json_file(model_dir + "/tokenizer_config.json"); config.is_ok() && config->is_object()) {
    auto t = config->find("chat_template");
    if (t != config->end()) source += t->is_string() ? t->get<std::string>() : dump_json(*t);
  }
  ToolCallFormat format = detect_tool_call_format(source);
  if (format != ToolCallFormat::kNone) BATON_LOG_INFO("tool calls: {} format", tool_call_format_name(format));
  return format;
}

// With pd.discovery, registers the instance in etcd under its role (null
// without). Destroying or deregister()ing it leaves at once.
Result<std::unique_ptr<discovery::Registration>> register_instance(const PdOptions& pd, const std::string& url,
                                                                   const std::string& model_name) {
  if (pd.discovery.empty()) return std::unique_ptr<discovery::Registration>();
  discovery::InstanceRecord record;
  record.url = pd.advertise_url.empty() ? url : pd.advertise_url;
  record.role = pd.role;
  record.model = model_name;
  auto reg = discovery::Registration::start(pd.discovery, record);
  if (!reg.is_ok()) return reg.status().with_context("registering with " + pd.discovery);
  return std::move(reg).value();
}

}  // namespace

std::string default_served_model_name(const std::string& model_arg) {
  return model_arg.empty() ? "default" : model_arg;
}

Result<std::unique_ptr<Instance>> Instance::start(const InstanceOptions& options) {
  auto instance = std::unique_ptr<Instance>(new Instance());
  BATON_RETURN_IF_ERROR(instance->start_parts(options));
  return instance;
}

Status Instance::start_parts(const InstanceOptions& options) {
  options_ = options;
  const ServerConfig& s = options.server;
  served_model_name_ = s.served_model_name.empty() ? default_served_model_name(options.engine.model)
                                                   : s.served_model_name;
  BATON_ASSIGN_OR_RETURN(role_, parse_pd_role(options.pd.role));
  BATON_RETURN_IF_ERROR(start_engine(options));
  LoadedEngine& le = *engine_;
  codec_ = std::make_unique<TokenizerCodec>(le.tokenizer, le.checkpoint->config().vocab_size);
  ApiServerOptions o;
  o.http.host = s.host;
  o.http.port = s.port;
  o.http.num_io_threads = s.num_io_threads;
  o.http.limits.max_body_bytes = s.max_body_bytes > 0 ? static_cast<size_t>(s.max_body_bytes)
                                                      : request_body_limit(le.engine->max_model_len());
  o.http.max_connections = s.max_connections;
  o.http.limits.header_timeout_s = s.header_timeout_s;
  o.http.limits.idle_timeout_s = s.idle_timeout_s;
  o.service.served_model_name = served_model_name_;
  o.service.model_path = le.model_dir;
  o.service.api_key = s.api_key;
  BATON_ASSIGN_OR_RETURN(o.service.tool_call_format, resolve_tool_call_parser(s.tool_call_parser, le.model_dir));
  if (connector_) {
    std::shared_ptr<PdKvConnector> connector = connector_;
    o.service.kv_release = [connector](const Json& params) { return connector->release_lease(params); };
  } else if (role_connector_) {
    std::shared_ptr<RoleKvConnector> connector = role_connector_;
    o.service.kv_release = [connector](const Json& params) { return connector->release_lease(params); };
  }
  o.service.role_admin = switcher_;
  o.service.kv_events = le.engine->kv_events();
  o.shutdown_grace_s = s.shutdown_grace_s;
  // Registered in discovery, the instance catches the signals itself: it
  // leaves the registry before the server's graceful shutdown.
  o.handle_signals = options.handle_signals && options.pd.discovery.empty();
  if (options.handle_signals && !o.handle_signals) signals_ = std::make_unique<SignalWaiter>();
  server_ = std::make_unique<ApiServer>(*le.engine, *codec_, o);
  if (connector_) connector_->attach_metrics(server_->service().metrics().registry());
  if (role_connector_) role_connector_->attach_metrics(server_->service().metrics().registry());
  if (switcher_) switcher_->attach_metrics(server_->service().metrics().registry());
  if (Status st = server_->start(); !st.is_ok()) {
    server_.reset();
    return st;
  }
  BATON_LOG_INFO("serving {} (max_model_len {}) at {}; bodies up to {} bytes, {} connections", served_model_name_,
                 le.engine->max_model_len(), server_->url(), o.http.limits.max_body_bytes, o.http.max_connections);
  auto registration = register_instance(options.pd, server_->url(), served_model_name_);
  if (!registration.is_ok()) {
    server_->shutdown();
    return registration.status();
  }
  registration_ = std::move(registration).value();
  if (switcher_ && registration_) {
    // Routers that watch the registry learn the new role: leave under the
    // old one, join under the new one.
    switcher_->set_on_flip([this](PdRole role) {
      PdOptions pd = options_.pd;
      pd.role = pd_role_name(role);
      std::lock_guard<std::mutex> lock(registration_mu_);
      if (!registration_) return;  // left already (stopping)
      registration_->deregister();
      auto again = register_instance(pd, server_->url(), served_model_name_);
      if (!again.is_ok()) {
        BATON_LOG_ERROR("re-registering as {}: {}", pd.role, again.status().to_string());
        registration_.reset();
        return;
      }
      registration_ = std::move(again).value();
    });
  }
  watchdog_ = std::thread([this] { watch_engine(); });
  return Status::ok();
}

void Instance::watch_engine() {
  std::unique_lock<std::mutex> lock(watchdog_mu_);
  for (;;) {
    if (watchdog_cv_.wait_for(lock, kWatchdogPeriod, [&] { return watchdog_stop_; })) return;
    Status health = engine_->engine->health();
    if (health.is_ok()) continue;
    fatal_ = health;
    break;
  }
  BATON_LOG_ERROR("the engine has stopped for good, the instance stops: {}", fatal_.to_string());
  if (!options_.handle_signals) return;
  ::kill(::getpid(), SIGTERM);  // the usual graceful stop, from run_until_signal (to the process, not this thread)
  const auto limit = std::chrono::duration<double>(options_.server.shutdown_grace_s + options_.pd.leave_grace_s) +
                     kHardExitMargin;
  if (watchdog_cv_.wait_for(lock, limit, [&] { return watchdog_stop_; })) return;
  BATON_LOG_ERROR("the instance did not stop within {} s of its engine's failure; exiting", limit.count());
  std::_Exit(1);
}

Status Instance::fatal_error() const {
  std::lock_guard<std::mutex> lock(watchdog_mu_);
  return fatal_;
}

Status Instance::start_engine(const InstanceOptions& options) {
  const ServerConfig& s = options.server;
  if (role_ == PdRole::kAgg && !options.pd.role_switching) {
    BATON_ASSIGN_OR_RETURN(engine_, build_engine(options.engine));
    return Status::ok();
  }
  if (!options.pd.role_switching) {
    BATON_ASSIGN_OR_RETURN(PdConnectorOptions ko, kv_connector_options(role_, options.pd, s.host));
    auto attach = [&](LoadedCore& core) -> Status {
      BATON_ASSIGN_OR_RETURN(
          connector_, make_kv_connector(ko, core.core->backend().kv_memory(), core.model_dir, served_model_name_));
      core.core->set_kv_connector(connector_);
      return Status::ok();
    };
    BATON_ASSIGN_OR_RETURN(engine_, build_engine(options.engine, attach));
    return Status::ok();
  }
  // Role switching: one RoleKvConnector for the engine's life, over the
  // current role's connector; each switch builds the next one.
  BATON_RETURN_IF_ERROR(kv_connector_options(role_, options.pd, s.host).status());  // bad KV settings fail now
  RoleSwitcher::ConnectorFactory factory;
  auto attach = [&](LoadedCore& core) -> Status {
    const KvMemory memory = core.core->backend().kv_memory();
    factory = [pd = options.pd, host = s.host, memory, dir = core.model_dir,
               name = served_model_name_](PdRole role) mutable -> Result<std::shared_ptr<PdKvConnector>> {
      pd.role = pd_role_name(role);  // names the connector's engine id
      BATON_ASSIGN_OR_RETURN(PdConnectorOptions ko, kv_connector_options(role, pd, host));
      return make_kv_connector(std::move(ko), memory, dir, name);
    };
    std::shared_ptr<PdKvConnector> initial;
    if (role_ != PdRole::kAgg) {
      BATON_ASSIGN_OR_RETURN(initial, factory(role_));
    }
    role_connector_ = std::make_shared<RoleKvConnector>(std::move(initial));
    core.core->set_kv_connector(role_connector_);
    return Status::ok();
  };
  BATON_ASSIGN_OR_RETURN(engine_, build_engine(options.engine, attach));
  switcher_ = RoleSwitcher::create(role_connector_, std::move(factory), options.pd.role_drain_timeout_s);
  return Status::ok();
}

Instance::~Instance() { stop(); }

void Instance::run_until_signal() {
  if (signals_) {
    const int sig = signals_->wait();
    // Leave first, keep serving while routers notice, then drain as usual:
    // no request fails on an instance that leaves gracefully.
    BATON_LOG_INFO("received {}: leaving {} and serving {} s more", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                   options_.pd.discovery, options_.pd.leave_grace_s);
    {
      std::lock_guard<std::mutex> lock(registration_mu_);
      registration_.reset();  // leaves; a role switch from here on registers nothing
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(options_.pd.leave_grace_s));
    stop();
  } else if (server_) {
    server_->run_until_signal();
    stop();
  }
}

void Instance::stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard<std::mutex> lock(watchdog_mu_);
    watchdog_stop_ = true;
  }
  watchdog_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (switcher_) switcher_->stop();  // a drain in flight ends as failed
  {
    std::lock_guard<std::mutex> lock(registration_mu_);
    if (registration_) registration_->deregister();
  }
  if (server_) server_->shutdown();
  if (engine_ && engine_->engine) engine_->engine->shutdown(AsyncEngine::ShutdownMode::kAbort);
  if (connector_) connector_->stop();
  if (role_connector_) role_connector_->stop();
}

}  // namespace baton::instance
