/* Console behaviour. Loaded as a file (the CSP forbids inline scripts); every page works without it. */
(function () {
  "use strict";

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  // Filters apply as soon as a select or checkbox changes.
  document.querySelectorAll("[data-autosubmit]").forEach(function (input) {
    input.addEventListener("change", function () { if (input.form) input.form.submit(); });
  });

  // Correction form: only the chosen category's subcategories are offered.
  var category = document.getElementById("correct-category");
  var sub = document.getElementById("correct-subcategory");
  if (category && sub) {
    var sync = function (reset) {
      sub.querySelectorAll("optgroup").forEach(function (group) {
        var mine = group.getAttribute("label") === category.value;
        group.hidden = !mine;
        group.disabled = !mine;
      });
      if (reset) sub.value = "";
    };
    category.addEventListener("change", function () { sync(true); });
    sync(false);
  }

  // Broadcast composer: live audience count.
  var composer = document.getElementById("broadcast-form");
  if (composer) {
    var box = document.getElementById("audience-count");
    var timer = null;
    var labels = { unsubscribed: "已取消关注", opted_out: "已退订通知", over_limit: "本月群发次数已满",
                   inactive: "成员已停用", no_wecom_userid: "无企业微信账号" };
    var count = function () {
      var data = new FormData(composer);
      data.set("title", data.get("title") || "预览");
      data.set("body", data.get("body") || "预览");
      fetch(composer.getAttribute("data-count-url"), {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf(), "Accept": "application/json" }
      }).then(function (response) { return response.json(); }).then(function (answer) {
        box.replaceChildren();
        if (answer.error) { box.appendChild(el("p", answer.message, "flash flash-error")); return; }
        var channels = Object.keys(answer.counts);
        if (!channels.length) { box.appendChild(el("p", "该范围内没有可送达的对象。", "muted")); }
        channels.forEach(function (channel) {
          var c = answer.counts[channel];
          var line = el("p");
          line.appendChild(el("strong", answer.labels[channel] || channel));
          line.appendChild(document.createTextNode("：" + c.total + (channel === "group" ? " 个群" : " 人")));
          Object.keys(c.skipped || {}).forEach(function (reason) {
            if (c.skipped[reason]) line.appendChild(el("small", "（" + (labels[reason] || reason) + " " + c.skipped[reason] + "）", "muted"));
          });
          box.appendChild(line);
        });
        var total = el("p", "合计 " + answer.total, "total");
        total.id = "audience-total";
        box.appendChild(total);
        if (answer.no_known_place) {
          var whole = (answer.counts.mp || {}).whole_account;
          box.appendChild(el("p", answer.no_known_place + " 位关注者位置未知" +
            (whole ? "（全县通知会送达）" : "（不在本次范围内）"), "muted"));
        }
        if (answer.would_be_refused) {
          box.appendChild(el("p", answer.over_limit + " 位居民本月群发次数已满：勾选“跳过”后才能发送。", "flash flash-error"));
        }
      }).catch(function () { box.replaceChildren(el("p", "人数计算失败，请稍后重试。", "flash flash-error")); });
    };
    composer.addEventListener("change", function () { clearTimeout(timer); timer = setTimeout(count, 250); });
    count();
  }

  // Broadcast page: a live progress bar until the broadcast is done or cancelled.
  var panel = document.getElementById("broadcast-progress");
  if (panel && panel.getAttribute("data-final") !== "true") {
    var url = panel.getAttribute("data-progress-url");
    var set = function (id, value) { var node = document.getElementById(id); if (node) node.textContent = String(value); };
    var poll = function () {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (r) {
          var p = r.progress;
          document.getElementById("broadcast-bar").value = p.percent;
          set("broadcast-percent", Number(p.percent).toFixed(1) + "%");
          set("broadcast-status", r.status_label);
          ["total", "sent", "failed", "pending", "skipped"].forEach(function (key) { set("p-" + key, p[key]); });
          var body = document.querySelector("#broadcast-report tbody");
          body.replaceChildren();
          Object.keys(p.channels).forEach(function (channel) {
            var c = p.channels[channel];
            var row = el("tr");
            row.setAttribute("data-channel", channel);
            [[r.labels[channel] || channel, "渠道"], [c.total, "应发"], [c.sent, "已发"], [c.failed, "失败"],
             [c.cancelled, "取消"], [c.pending, "待发"], [c.skipped, "跳过"]].forEach(function (cell) {
              var td = el("td", cell[0]);
              td.setAttribute("data-label", cell[1]);
              row.appendChild(td);
            });
            body.appendChild(row);
          });
          if (r.final) {
            panel.setAttribute("data-final", "true");
            var cancel = document.getElementById("broadcast-cancel");
            if (cancel) cancel.remove();
          } else { setTimeout(poll, 1000); }
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 500);
  }
})();
