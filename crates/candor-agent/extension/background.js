// Candor browser extension: reports the active tab's page and how long it was
// in front (the window focused, the user not idle) to the Candor agent through
// native messaging. Nothing else: no page content, no keystrokes, no form data.
// The agent keeps only the domain unless the company's policy asks for more.

const HOST = "com.candor.agent";
let port = null;
let current = null; // { url, title, since }

function connect() {
  try {
    port = chrome.runtime.connectNative(HOST);
    port.onDisconnect.addListener(() => { port = null; setTimeout(connect, 5000); });
  } catch (e) {
    port = null;
    setTimeout(connect, 5000);
  }
}

// Search words typed into the common engines' result pages.
function searchWords(url) {
  const engines = { "www.baidu.com": "wd", "m.baidu.com": "word", "www.bing.com": "q", "cn.bing.com": "q", "www.google.com": "q", "www.sogou.com": "query" };
  const key = engines[url.hostname];
  return key ? url.searchParams.get(key) : null;
}

function flush() {
  if (!current) return;
  const dwell = Date.now() - current.since;
  if (port && dwell >= 500) {
    let search = null;
    try { search = searchWords(new URL(current.url)); } catch (e) { /* not a URL */ }
    port.postMessage({ url: current.url, title: current.title, ts_ms: current.since, dwell_ms: dwell, search });
  }
  current = null;
}

function track(tab) {
  flush();
  if (tab && tab.url && /^https?:/.test(tab.url)) current = { url: tab.url, title: tab.title || "", since: Date.now() };
}

async function refresh() {
  const [tab] = await chrome.tabs.query({ active: true, lastFocusedWindow: true });
  if (!current || !tab || tab.url !== current.url) track(tab);
  else if (tab.title) current.title = tab.title;
}

chrome.tabs.onActivated.addListener(refresh);
chrome.tabs.onUpdated.addListener((id, change, tab) => { if (tab.active && (change.url || change.title || change.status === "complete")) refresh(); });
chrome.windows.onFocusChanged.addListener((w) => { if (w === chrome.windows.WINDOW_ID_NONE) flush(); else refresh(); });
chrome.idle.onStateChanged.addListener((state) => { if (state === "active") refresh(); else flush(); });
chrome.tabs.onRemoved.addListener(refresh);
// Long stays are reported in parts, so nothing is lost if the browser is killed.
setInterval(() => { if (current) { const c = current; flush(); current = { ...c, since: Date.now() }; } }, 60000);
connect();
refresh();
