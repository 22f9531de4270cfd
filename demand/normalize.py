"""Text clean-up shared by every part of the parser.

Two forms of a message exist:
- the *clean* text (`clean_text`): HTML stripped, full-width ASCII folded, common traditional characters
  simplified, whitespace collapsed, length capped. It is what staff read as the description.
- the *match* text (`match_text`): the clean text with Chinese numerals before address units turned into
  digits (一号楼 → 1号楼, 三单元 → 3单元, 第一网格 → 第1网格). Place names in the gazetteer go through the
  same function, so both sides of a comparison always agree.
"""

from __future__ import annotations

import html
import re
import unicodedata

# A resident's message is short; anything past this is a paste (a document, a chat log). Keeping the
# head bounds the parser's cost per message, which the webhook path relies on.
MAX_CHARS = 4000

_TAG = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<[^<>]{0,500}>", re.IGNORECASE | re.DOTALL)
_BREAK_TAG = re.compile(r"<\s*(br|/p|/div|/li|/tr|p|div)\b[^>]*>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\u00a0\u3000\u200b\u200c\u200d\ufeff]+")
_NEWLINES = re.compile(r"\s*\n\s*")
# Control characters and unassigned/private-use code points carry nothing a person wrote on purpose.
_DROP_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})

# Full-width ASCII (！ to ～) → ASCII, but only digits, Latin letters and a few separators: Chinese
# punctuation such as ，。：（） stays as written because it reads better in the description.
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_KEEP_FULLWIDTH = set("，。：；！？（）【】“”‘’、《》")
_FULLWIDTH = {k: v for k, v in _FULLWIDTH.items() if chr(k) not in _KEEP_FULLWIDTH}
_FULLWIDTH[0x3000] = 0x20

# Traditional → simplified for characters that commonly appear in residents' messages (written by hand:
# pairs of "traditional simplified"). Not a full conversion table: rare characters pass through and the
# char n-gram models cope with them.
_T2S_PAIRS = (
    "萬万 與与 專专 業业 東东 絲丝 丟丢 兩两 嚴严 喪丧 個个 豐丰 臨临 為为 麗丽 舉举 麼么 義义 樂乐 習习 鄉乡 書书 "
    "買买 亂乱 爭争 虧亏 雲云 亞亚 產产 畝亩 親亲 億亿 僅仅 從从 倉仓 儀仪 們们 價价 眾众 優优 會会 傘伞 偉伟 傳传 "
    "傷伤 倫伦 偽伪 體体 傭佣 俠侠 偵侦 側侧 僑侨 儘尽 債债 傾倾 償偿 儲储 兒儿 黨党 蘭兰 關关 興兴 養养 獸兽 內内 "
    "岡冈 冊册 寫写 軍军 農农 馮冯 決决 況况 凍冻 淨净 涼凉 減减 湊凑 幾几 鳳凤 憑凭 凱凯 擊击 劃划 劉刘 則则 剛刚 "
    "創创 刪删 別别 劑剂 劍剑 劇剧 勸劝 辦办 務务 動动 勵励 勁劲 勞劳 勢势 勻匀 區区 醫医 華华 協协 單单 賣卖 盧卢 "
    "衛卫 卻却 廠厂 廳厅 歷历 曆历 厲厉 壓压 厭厌 廁厕 廂厢 廈厦 廚厨 縣县 參参 雙双 發发 變变 敘叙 疊叠 葉叶 號号 "
    "歎叹 後后 嚇吓 呂吕 嗎吗 噸吨 聽听 啟启 吳吴 員员 嗚呜 響响 啞哑 喚唤 團团 園园 圍围 國国 圖图 圓圆 聖圣 場场 "
    "壞坏 塊块 堅坚 壇坛 壩坝 墳坟 墜坠 壘垒 墾垦 墊垫 壺壶 壽寿 夠够 夢梦 夾夹 奧奥 奪夺 奮奋 獎奖 妝妆 婦妇 媽妈 "
    "嬌娇 娛娱 嬰婴 孫孙 學学 寧宁 寶宝 實实 寵宠 審审 憲宪 宮宫 寬宽 賓宾 寢寝 對对 尋寻 導导 將将 爾尔 塵尘 堯尧 "
    "屍尸 盡尽 層层 屆届 屬属 歲岁 豈岂 島岛 嶺岭 峽峡 鞏巩 幣币 帥帅 師师 帳帐 簾帘 帶带 幫帮 幹干 並并 廣广 莊庄 "
    "慶庆 廬庐 庫库 應应 廟庙 龐庞 廢废 開开 異异 棄弃 張张 彌弥 彎弯 彈弹 強强 歸归 當当 錄录 徹彻 徑径 憶忆 憂忧 "
    "懷怀 態态 總总 惡恶 慟恸 惱恼 悅悦 懸悬 驚惊 懼惧 慘惨 懲惩 慣惯 憤愤 願愿 懶懒 戀恋 懇恳 戲戏 戰战 戶户 撲扑 "
    "執执 擴扩 掃扫 揚扬 擾扰 撫抚 搶抢 護护 報报 擔担 擬拟 擁拥 攔拦 擰拧 撥拨 擇择 掛挂 擠挤 揮挥 損损 撿捡 換换 "
    "據据 擺摆 搖摇 攤摊 撐撑 攜携 攝摄 敵敌 數数 齋斋 鬥斗 斬斩 斷断 無无 舊旧 時时 曠旷 晝昼 顯显 晉晋 曬晒 曉晓 "
    "暈晕 暉晖 暫暂 術术 樸朴 機机 殺杀 雜杂 權权 條条 來来 楊杨 傑杰 極极 構构 樞枢 棗枣 槍枪 櫃柜 標标 棧栈 棟栋 "
    "欄栏 樹树 樣样 檔档 橋桥 樺桦 檢检 樓楼 欖榄 橫横 櫻樱 歡欢 歐欧 殘残 毆殴 毀毁 畢毕 斃毙 氣气 匯汇 漢汉 湯汤 "
    "溝沟 沒没 淚泪 瀉泻 潑泼 澤泽 潔洁 灑洒 窪洼 淺浅 漿浆 澆浇 濁浊 測测 濟济 瀏浏 渾浑 濃浓 濤涛 澇涝 渦涡 滌涤 "
    "潤润 澗涧 漲涨 澀涩 淵渊 漬渍 漸渐 漁渔 滲渗 溫温 遊游 灣湾 濕湿 潰溃 濺溅 滾滚 滯滞 滿满 濾滤 濫滥 濱滨 灘滩 "
    "瀟潇 潛潜 瀾澜 瀕濒 滅灭 燈灯 靈灵 災灾 燦灿 爐炉 燉炖 點点 煉炼 爛烂 燭烛 煙烟 煩烦 燒烧 燙烫 熱热 煥焕 燜焖 "
    "愛爱 爺爷 牽牵 犧牺 狀状 猶犹 獨独 狹狭 獅狮 獄狱 獵猎 豬猪 貓猫 獻献 環环 現现 瑣琐 瓊琼 電电 畫画 暢畅 療疗 "
    "瘡疮 瘋疯 癢痒 癡痴 癱瘫 癮瘾 皺皱 盞盏 鹽盐 監监 蓋盖 盜盗 盤盘 睜睁 瞞瞒 矯矫 礦矿 碼码 磚砖 硯砚 礎础 碩硕 "
    "確确 鹼碱 礙碍 禮礼 禍祸 祿禄 禪禅 離离 禿秃 種种 積积 稱称 稅税 穩稳 窮穷 竊窃 竅窍 窯窑 竄窜 窩窝 豎竖 競竞 "
    "筆笔 築筑 篩筛 籌筹 簽签 簡简 籃篮 籬篱 類类 糧粮 緊紧 糾纠 紅红 約约 級级 紀纪 純纯 紗纱 綱纲 納纳 縱纵 紛纷 "
    "紙纸 紋纹 紡纺 線线 練练 組组 紳绅 細细 織织 終终 紹绍 經经 綁绑 絨绒 結结 繞绕 繪绘 給给 絡络 絕绝 絞绞 統统 "
    "絹绢 繡绣 繼继 績绩 緒绪 續续 維维 綿绵 綢绸 綜综 綠绿 緝缉 緩缓 締缔 編编 緣缘 縫缝 縮缩 繁繁 繳缴 網网 羅罗 "
    "罰罚 罷罢 翹翘 聳耸 恥耻 聶聂 聾聋 職职 聯联 聰聪 肅肃 腸肠 膚肤 腎肾 腫肿 脹胀 膽胆 勝胜 腦脑 膠胶 脈脉 髒脏 "
    "臍脐 膿脓 腳脚 脫脱 臉脸 臘腊 艦舰 艙舱 艱艰 豔艳 藝艺 節节 蘆芦 蘇苏 蘋苹 莖茎 薦荐 莢荚 蕩荡 榮荣 葷荤 藥药 "
    "蓮莲 獲获 鶯莺 營营 蕭萧 薩萨 蔥葱 蔣蒋 藍蓝 蘿萝 虜虏 慮虑 虛虚 蟲虫 雖虽 蝦虾 蝕蚀 蟻蚁 螞蚂 蠶蚕 蠅蝇 蟬蝉 "
    "蠟蜡 補补 襯衬 襪袜 襲袭 裝装 褲裤 見见 觀观 規规 覓觅 視视 覽览 覺觉 觸触 譽誉 計计 訂订 認认 譏讥 討讨 讓让 "
    "訓训 議议 訊讯 記记 講讲 許许 論论 訟讼 諷讽 設设 訪访 證证 評评 識识 詐诈 訴诉 診诊 詞词 譯译 試试 詩诗 誠诚 "
    "話话 誕诞 詢询 該该 詳详 誤误 語语 誘诱 說说 請请 諸诸 諾诺 讀读 課课 誰谁 調调 諒谅 談谈 謀谋 謊谎 謝谢 謠谣 "
    "謙谦 謹谨 譜谱 貝贝 貞贞 負负 貢贡 財财 責责 賢贤 敗败 賬账 貨货 質质 販贩 貪贪 貧贫 購购 貯贮 貫贯 貼贴 貴贵 "
    "貸贷 貿贸 費费 賀贺 賊贼 賄贿 資资 賃赁 賂赂 賭赌 賠赔 賞赏 賜赐 賴赖 賺赚 賽赛 贈赠 贏赢 趙赵 趕赶 趨趋 躍跃 "
    "踐践 蹤踪 車车 軌轨 軟软 轉转 輪轮 轟轰 軸轴 輕轻 載载 較较 轎轿 輔辅 輛辆 輩辈 輝辉 輸输 轄辖 辭辞 辯辩 邊边 "
    "遼辽 達达 遷迁 過过 邁迈 運运 還还 這这 進进 遠远 違违 連连 遲迟 跡迹 適适 選选 遞递 邏逻 遺遗 鄧邓 鄰邻 鄭郑 "
    "醬酱 釀酿 釋释 鑒鉴 針针 釘钉 鈣钙 鈔钞 鋼钢 鑰钥 鈴铃 鉛铅 銅铜 鋁铝 銀银 鐵铁 鋪铺 鏈链 銷销 鎖锁 鍋锅 鏽锈 "
    "鋒锋 錢钱 錯错 錄录 錦锦 鍵键 鋸锯 鎮镇 鏡镜 鐘钟 鑄铸 長长 門门 閃闪 閉闭 問问 闖闯 閑闲 間间 悶闷 閘闸 鬧闹 "
    "聞闻 閱阅 闊阔 隊队 陽阳 陰阴 陣阵 階阶 際际 陸陆 陳陈 險险 隨随 隱隐 難难 雛雏 霧雾 靜静 韓韩 頁页 頂顶 項项 "
    "順顺 須须 頑顽 顧顾 頓顿 預预 領领 頗颇 頸颈 頻频 顆颗 題题 額额 顏颜 願愿 風风 颱台 飄飘 飛飞 飢饥 飯饭 飲饮 "
    "飾饰 飽饱 飼饲 餅饼 餓饿 餘余 館馆 饅馒 馬马 駁驳 駛驶 駐驻 駕驾 驗验 騎骑 騙骗 騷骚 驅驱 驢驴 驟骤 髮发 鬍胡 "
    "魚鱼 魯鲁 鮮鲜 鳥鸟 雞鸡 鴨鸭 鵝鹅 麥麦 黃黄 齊齐 齒齿 齡龄 龍龙 龜龟 糰团 週周 捨舍 鬱郁 噴喷 嚨咙 嘔呕 癥症 "
    "檯台 臺台 擋挡 攪搅 攬揽 闆板 傢家 僱雇 嘩哗 鍍镀 礫砾 燁烨 佈布 係系 氫氢 暱昵 瀝沥 墮堕 壟垄 溼湿 "
    "於于 裏里 裡里 麵面 處处 頭头 証证 隻只 衝冲 聲声 臟脏 郵邮 錶表 牆墙 塗涂 閥阀 樁桩 準准 範范 盪荡 "
    "彎弯 鬆松 纔才 禦御 劃划 徵征 汙污 鑑鉴 諮咨"
)
_T2S = str.maketrans({pair[0]: pair[1] for pair in _T2S_PAIRS.split() if len(pair) == 2 and pair[0] != pair[1]})

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "○": 0,
    "一": 1,
    "壹": 1,
    "二": 2,
    "两": 2,
    "贰": 2,
    "三": 3,
    "叁": 3,
    "四": 4,
    "肆": 4,
    "五": 5,
    "伍": 5,
    "六": 6,
    "陆": 6,
    "七": 7,
    "柒": 7,
    "八": 8,
    "捌": 8,
    "九": 9,
    "玖": 9,
}
_CN_NUMBER = "零〇○一壹二两贰三叁四肆五伍六陆七柒八捌九玖十拾百"
# Address units a number may precede. "楼" alone means a floor in speech ("住5楼"), but still takes digits.
_UNITS = "号楼|号院|号门|号|栋|幢|座|单元|室|层|楼|网格|组|小组|期|区|巷|弄|排"
_CN_NUMERAL_BEFORE_UNIT = re.compile(rf"([{_CN_NUMBER}]{{1,6}})(?=(?:{_UNITS}))")
# 第 + numeral is an ordinal whatever follows ("第三网格", "第二十组").
_CN_ORDINAL = re.compile(rf"第([{_CN_NUMBER}]{{1,6}})")


def chinese_to_int(numeral: str) -> int | None:
    """Value of a Chinese numeral (一, 十二, 二十三, 一百零五, 五零二 digit-by-digit); None if it is not one."""
    if not numeral or any(ch not in _CN_DIGITS and ch not in "十拾百" for ch in numeral):
        return None
    if all(ch in _CN_DIGITS for ch in numeral):
        # Digit-by-digit reading, how room numbers are said: 五零二 → 502.
        return int("".join(str(_CN_DIGITS[ch]) for ch in numeral))
    total, current = 0, 0
    for ch in numeral:
        if ch in _CN_DIGITS:
            current = _CN_DIGITS[ch]
        elif ch in "十拾":
            total += (current or 1) * 10
            current = 0
        elif ch == "百":
            total += (current or 1) * 100
            current = 0
    return total + current


def _numeral_to_digits(match: re.Match[str]) -> str:
    value = chinese_to_int(match.group(1))
    return match.group(0) if value is None else match.group(0).replace(match.group(1), str(value), 1)


def strip_html(text: str) -> str:
    """Remove markup (tags, scripts, comments) and decode entities; a line break tag becomes a newline."""
    if "<" not in text and "&" not in text:
        return text
    text = _BREAK_TAG.sub("\n", text)
    text = _TAG.sub("", text)
    return html.unescape(text)


def clean_text(text: object, max_chars: int = MAX_CHARS) -> str:
    """The description form of a message: markup gone, widths and scripts folded, spaces collapsed, capped.

    Accepts anything (None, bytes, numbers) so callers never need to guard; never raises.
    """
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    elif not isinstance(text, str):
        text = str(text)
    # Cap before the regex work too, with headroom for markup that will be stripped.
    text = text[: max_chars * 4]
    text = strip_html(text)
    text = text.translate(_FULLWIDTH).translate(_T2S)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Fast path: most messages have nothing to drop (isprintable is one C loop over the string).
    if not text.replace("\n", "").replace("\t", "").replace(" ", "").isprintable():
        text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in _DROP_CATEGORIES)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text).strip()
    return text[:max_chars]


def match_text(clean: str) -> str:
    """The matching form of clean text: Chinese numerals before address units become digits."""
    if not clean:
        return clean
    text = _CN_ORDINAL.sub(_numeral_to_digits, clean)
    return _CN_NUMERAL_BEFORE_UNIT.sub(_numeral_to_digits, text)


def normalize(text: object, max_chars: int = MAX_CHARS) -> str:
    """Clean text in its matching form (see the module docstring); the one call most callers want."""
    return match_text(clean_text(text, max_chars))
