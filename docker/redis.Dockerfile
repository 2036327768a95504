# Redis for the compose stack, from Debian's redis-server package (Redis 7 in bookworm):
# this machine cannot pull redis:7. BASE_IMAGE: the upstream default; here the local
# Debian bookworm `aios-base:bookworm` (scripts/build-images.sh).
ARG BASE_IMAGE=debian:bookworm-slim
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/aios-redis-entrypoint
COPY redis-cli.sh /usr/local/bin/redis-cli
RUN chmod 755 /usr/local/bin/aios-redis-entrypoint /usr/local/bin/redis-cli
# A new named volume takes /data's owner from here: redis, not root.
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
# AOF so accepted tasks survive a restart; noeviction so the broker never drops a key.
# The port is reachable only on the compose network, never published; and every client,
# there too, must give REDIS_PASSWORD (the entrypoint passes it to redis-server).
ENTRYPOINT ["aios-redis-entrypoint"]
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", \
     "--appendonly", "yes", "--maxmemory-policy", "noeviction", "--save", ""]
