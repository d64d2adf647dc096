"""The distributed deployment on loopback: PostgreSQL, Redis, action servers behind a proxy, Rasa replicas."""
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..actions import settings
from ..local_services import LocalPostgres, LocalRedis
from ..processes import LOOPBACK, pick_free_port
from ..servers import BOT_DIR, BotServers, new_secret
from .proxy import RoundRobinProxy

logger = logging.getLogger("scale_check")

PRODUCTION_ENDPOINTS = BOT_DIR / "endpoints.production.yml"


@dataclass
class Stack:
    """PostgreSQL, Redis, M action servers behind a proxy and N Rasa replicas, sharing their secrets."""

    model: Path
    work_dir: Path
    replicas: int
    action_servers: int
    student: Optional[str] = None
    endpoints: Path = PRODUCTION_ENDPOINTS
    pg: Optional[LocalPostgres] = None
    redis: Optional[LocalRedis] = None
    proxy: Optional[RoundRobinProxy] = None
    actions: List[BotServers] = field(default_factory=list)
    rasa: List[BotServers] = field(default_factory=list)
    secrets: Dict[str, str] = field(default_factory=dict)

    def start(self) -> "Stack":
        try:
            t = time.monotonic()
            self.pg = LocalPostgres().start()
            self.redis = LocalRedis().start()
            logger.info("PostgreSQL on :%d and Redis on :%d ready in %.1f s", self.pg.port, self.redis.port,
                        time.monotonic() - t)
            # One set of random secrets for the whole deployment (in production: the secret manager's).
            self.secrets = {"jwt_secret": new_secret(), "action_token": new_secret(), "api_token": new_secret()}
            action_env = {settings.DB_ENV: self.pg.url("memory")}
            if self.student:
                action_env[settings.MODEL_ENV] = self.student
            for i in range(self.action_servers):
                servers = BotServers(model=self.model, work_dir=self.work_dir / f"actions-{i}", action_port=pick_free_port(),
                                     rasa_port=pick_free_port(), env=action_env, **self.secrets)
                servers.work_dir.mkdir(parents=True, exist_ok=True)
                servers.start_actions()
                self.actions.append(servers)
            self.proxy = RoundRobinProxy([(LOOPBACK, s.action_port) for s in self.actions]).start()
            for i in range(self.replicas):
                servers = BotServers(model=self.model, work_dir=self.work_dir / f"rasa-{i}", rasa_port=pick_free_port(),
                                     action_port=self.proxy.port, endpoints=self.endpoints,
                                     rasa_env=self.rasa_env(), **self.secrets)
                servers.work_dir.mkdir(parents=True, exist_ok=True)
                servers.start_rasa()
                self.rasa.append(servers)
            for servers in self.actions:  # all started at once; now wait for each
                servers.wait_ready(actions=True, rasa=False)
            for servers in self.rasa:
                servers.wait_ready(actions=False, rasa=True)
            logger.info("%d action servers and %d Rasa replicas ready after %.0f s", self.action_servers,
                        self.replicas, time.monotonic() - t)
        except BaseException:
            self.stop()
            raise
        return self

    def rasa_env(self) -> Dict[str, str]:
        """What endpoints.production.yml reads: the secrets reach Rasa only through its environment."""
        return {
            "MEMORY_BOT_ACTION_URL": self.proxy.url,
            "RASA_TRACKER_DB_HOST": self.pg.host, "RASA_TRACKER_DB_PORT": str(self.pg.port),
            "RASA_TRACKER_DB_USER": self.pg.user, "RASA_TRACKER_DB_PASSWORD": self.pg.password,
            "RASA_TRACKER_DB_NAME": "rasa",
            "RASA_LOCK_REDIS_HOST": self.redis.host, "RASA_LOCK_REDIS_PORT": str(self.redis.port),
            "RASA_LOCK_REDIS_PASSWORD": self.redis.password, "RASA_LOCK_REDIS_DB": "1",
        }

    def restart_rasa(self, index: int) -> float:
        """Stop replica ``index`` (SIGTERM) and start it again; seconds until it was ready."""
        t = time.monotonic()
        servers = self.rasa[index]
        servers.stop_one("rasa")
        servers.start(actions=False, rasa=True)
        return time.monotonic() - t

    def stop(self) -> None:
        for servers in self.rasa + self.actions:
            servers.stop()
        if self.proxy is not None:
            self.proxy.stop()
        for service in (self.redis, self.pg):
            if service is not None:
                service.stop()
