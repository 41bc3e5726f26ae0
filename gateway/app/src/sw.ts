/**
 * The service worker: Workbox precaches every file of the app (the list and
 * content-hash revisions are injected by build.mjs as `self.__WB_MANIFEST`),
 * answers them from the cache, and answers any navigation under /app with
 * the cached index.html, so the app opens without a network and says so.
 * API calls (/v1) are never cached: they go to the network.
 * @module
 */
import { clientsClaim } from "workbox-core";
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute, type PrecacheEntry } from "workbox-precaching";
import { NavigationRoute, registerRoute } from "workbox-routing";

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: Array<PrecacheEntry | string> };

self.skipWaiting();
clientsClaim();
cleanupOutdatedCaches();
precacheAndRoute(self.__WB_MANIFEST);
registerRoute(new NavigationRoute(createHandlerBoundToURL("/app/index.html"), { allowlist: [/^\/app(\/|$)/] }));
