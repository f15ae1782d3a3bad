// ECharts loader: the library comes from npm (cloud/web/dist/vendor, served at /vendor/). When it is missing,
// loadCharts() resolves to null and the pages show tables instead, with a notice saying how to enable charts.

let loading = null;

export function loadCharts() {
  loading ??= (async () => {
    try {
      const status = await (await fetch("/vendor/status.json")).json();
      if (!status.charts) return { echarts: null, hint: status.hint };
      await new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = "/vendor/echarts.min.js";
        s.onload = resolve;
        s.onerror = reject;
        document.head.append(s);
      });
      return { echarts: window.echarts, hint: null };
    } catch {
      return { echarts: null, hint: "图表组件加载失败：请在 cloud/web 目录运行 npm ci 后刷新页面。" };
    }
  })();
  return loading;
}

export function chartNotice(el, hint) {
  const p = document.createElement("p");
  p.className = "notice";
  p.setAttribute("role", "note");
  p.textContent = hint;
  el.replaceChildren(p);
}
