"""Multilingual check sentences: three meanings, each in the 18 languages."""
from typing import Dict, List, Tuple

import numpy as np

# lang -> (weather question, cancel-order request, cat statement)
TRANSLATIONS: Dict[str, Tuple[str, str, str]] = {
    "en": ("How is the weather today?", "Please cancel my last order.", "The cat is sleeping on the sofa."),
    "ko": ("오늘 날씨 어때요?", "마지막 주문을 취소해 주세요.", "고양이가 소파에서 자고 있어요."),
    "ja": ("今日の天気はどうですか？", "最後の注文をキャンセルしてください。", "猫がソファで寝ています。"),
    "zh": ("今天天气怎么样？", "请取消我最后一个订单。", "猫在沙发上睡觉。"),
    "es": ("¿Qué tiempo hace hoy?", "Por favor, cancela mi último pedido.", "El gato está durmiendo en el sofá."),
    "fr": ("Quel temps fait-il aujourd'hui ?", "Veuillez annuler ma dernière commande.", "Le chat dort sur le canapé."),
    "de": ("Wie ist das Wetter heute?", "Bitte storniere meine letzte Bestellung.", "Die Katze schläft auf dem Sofa."),
    "pt": ("Como está o tempo hoje?", "Por favor, cancele o meu último pedido.", "O gato está dormindo no sofá."),
    "it": ("Che tempo fa oggi?", "Per favore, annulla il mio ultimo ordine.", "Il gatto sta dormendo sul divano."),
    "ru": ("Какая сегодня погода?", "Пожалуйста, отмените мой последний заказ.", "Кошка спит на диване."),
    "ar": ("كيف حال الطقس اليوم؟", "من فضلك ألغِ طلبي الأخير.", "القطة نائمة على الأريكة."),
    "hi": ("आज मौसम कैसा है?", "कृपया मेरा आखिरी ऑर्डर रद्द करें।", "बिल्ली सोफे पर सो रही है।"),
    "th": ("วันนี้อากาศเป็นอย่างไร", "กรุณายกเลิกคำสั่งซื้อล่าสุดของฉัน", "แมวกำลังนอนหลับอยู่บนโซฟา"),
    "vi": ("Thời tiết hôm nay thế nào?", "Vui lòng hủy đơn hàng cuối cùng của tôi.", "Con mèo đang ngủ trên ghế sofa."),
    "id": ("Bagaimana cuaca hari ini?", "Tolong batalkan pesanan terakhir saya.", "Kucing itu sedang tidur di sofa."),
    "tr": ("Bugün hava nasıl?", "Lütfen son siparişimi iptal et.", "Kedi kanepede uyuyor."),
    "nl": ("Hoe is het weer vandaag?", "Annuleer alstublieft mijn laatste bestelling.", "De kat slaapt op de bank."),
    "pl": ("Jaka jest dziś pogoda?", "Proszę anulować moje ostatnie zamówienie.", "Kot śpi na kanapie."),
}

# (query, relevant passage, distractor passage) in several languages.
RETRIEVAL: List[Tuple[str, str, str]] = [
    ("what is the capital of France", "Paris is the capital and largest city of France.", "The Amazon is the largest rainforest on Earth."),
    ("¿cuántas patas tiene una araña?", "Las arañas tienen ocho patas.", "El café se cultiva en zonas tropicales."),
    ("Wann wurde die Berliner Mauer gebaut?", "Die Berliner Mauer wurde 1961 errichtet.", "Der Rhein fließt durch mehrere Länder."),
    ("水的沸点是多少", "在标准大气压下，水在100摄氏度沸腾。", "长城是中国古代的军事防御工程。"),
    ("한국의 수도는 어디인가요?", "서울은 대한민국의 수도입니다.", "김치는 발효 음식입니다."),
    ("как приготовить блины", "Для блинов смешайте муку, яйца и молоко и жарьте на сковороде.", "Москва — крупнейший город России."),
]


def check_sentences() -> List[str]:
    """All translations, language by language (54 sentences)."""
    return [s for lang in TRANSLATIONS for s in TRANSLATIONS[lang]]


def translation_matches(vectors: np.ndarray) -> int:
    """How many of the 54 check sentences are nearest to their own English translation among the 3 meanings.

    Args:
        vectors: float array of shape (54, dim), in ``check_sentences()`` order.
    """
    langs = list(TRANSLATIONS)
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
    v = v.reshape(len(langs), 3, -1)  # (language, meaning, dim)
    sims = np.einsum("lmd,nd->lmn", v, v[langs.index("en")])
    return int((sims.argmax(-1) == np.arange(3)).sum())
