"""Texts the tests share: real sentences in many languages and scripts, as users' data has."""

# Real multilingual text, none of it among engine.model.precision's probe texts.
MULTILINGUAL = [
    "The library's opening hours change during the summer holidays.",
    "Wir treffen uns morgen um zehn Uhr vor dem Bahnhof.",
    "Je voudrais réserver une table pour deux personnes ce soir.",
    "El partido se suspendió por la lluvia y se jugará el domingo.",
    "Она прочитала эту книгу за один вечер.",
    "我们明天早上八点在公司门口见面。",
    "今日はとても暑いので、家で映画を見ます。",
    "이 식당은 김치찌개가 정말 맛있어요.",
    "يفتح المتحف أبوابه للزوار من التاسعة صباحا.",
    "मुझे हिंदी फिल्में देखना बहुत पसंद है।",
    "Πού είναι το πλησιέστερο φαρμακείο;",
    "for line in open(path): print(line.rstrip())",
    "yes",
    "A long sentence about the weather: it rained all morning, the wind turned north in the "
    "afternoon, and by the evening the streets were dry again and full of people walking.",
]
